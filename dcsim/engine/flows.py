"""Flows sharing link bandwidth max-min fairly, recomputed only when a flow starts or ends.

Max-min fairness by progressive filling, vectorised: every round, each link offers its remaining
capacity split evenly over its unfrozen flows; the links with the smallest share are bottlenecks,
and their flows are frozen at that share. Rounds equal the number of distinct rate levels, each
a few numpy passes over the (flow, link) pairs, not a Python loop over them.

Incremental: a start or end can change only the rates of flows connected to it through shared
links (transitively), so only that component is refilled; flows elsewhere keep their rates.

A flow may carry a cap (the most it wants, e.g. a dataset stream's rate): it acts as a private link
of that capacity, so a capped flow freezes at its cap when that is below every link's fair share.
After each change `changed` lists the flows whose rate moved and `carried` holds each link's load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class FlowNetwork:
    def __init__(self, capacities: Sequence[float]) -> None:
        self.capacity = np.asarray(capacities, dtype=float)
        self.flows: dict[int, np.ndarray] = {}  # flow id -> link indexes
        self.rates: dict[int, float] = {}
        self.caps: dict[int, float] = {}  # flow id -> the most it wants (only flows with a cap)
        self.carried = np.zeros(len(self.capacity))  # bytes/s on each link
        self.changed: list[int] = []  # flows (still present) whose rate the last change moved, ascending
        self.on_link: list[set[int]] = [set() for _ in range(len(self.capacity))]
        self._next = 0
        self.recomputed_flows = 0  # total flows refilled: the cost measure benchmarks report

    def add(self, links: Sequence[int], cap: float = math.inf) -> int:
        """Start a flow over `links`; return its id. Rates of its component are recomputed."""
        return self.add_many([links], [cap])[0]

    def add_many(self, paths: Sequence[Sequence[int]], caps: Sequence[float] | None = None) -> list[int]:
        """Start several flows at one instant, with one recomputation."""
        ids = []
        touched: set[int] = set()
        for index, links in enumerate(paths):
            flow = self._next
            self._next += 1
            path = np.asarray(sorted(set(links)), dtype=np.int64)
            self.flows[flow] = path
            cap = math.inf if caps is None else float(caps[index])
            if not cap > 0:
                raise ValueError(f"flow cap must be > 0, got {cap}")
            if cap < math.inf:
                self.caps[flow] = cap
            for link in path:
                self.on_link[link].add(flow)
            touched.update(int(link) for link in path)
            ids.append(flow)
        self._refill(self._component(np.asarray(sorted(touched), dtype=np.int64)))
        return ids

    def remove(self, flow: int) -> None:
        self.remove_many([flow])

    def remove_many(self, flows: Sequence[int]) -> None:
        """End several flows at one instant, with one recomputation."""
        touched: set[int] = set()
        for flow in flows:
            path = self.flows.pop(flow)
            rate = self.rates.pop(flow, 0.0)
            self.caps.pop(flow, None)
            if math.isfinite(rate):
                self.carried[path] -= rate
            for link in path:
                self.on_link[link].discard(flow)
            touched.update(int(link) for link in path)
        self._refill(self._component(np.asarray(sorted(touched), dtype=np.int64)))

    def rate(self, flow: int) -> float:
        return self.rates[flow]

    def utilization(self) -> np.ndarray:
        """Carried traffic over capacity, per link."""
        return np.maximum(self.carried, 0.0) / self.capacity

    # --- internals ------------------------------------------------------------------------------
    def _component(self, links: np.ndarray) -> list[int]:
        """Flows reachable from `links` through shared links."""
        seen_links = set(int(link) for link in links)
        stack = list(seen_links)
        flows: set[int] = set()
        while stack:
            for flow in self.on_link[stack.pop()]:
                if flow in flows:
                    continue
                flows.add(flow)
                for link in self.flows[flow]:
                    link = int(link)
                    if link not in seen_links:
                        seen_links.add(link)
                        stack.append(link)
        return sorted(flows)

    def _refill(self, flows: list[int]) -> None:
        self.changed = []
        if not flows:
            return
        self.recomputed_flows += len(flows)
        paths = [self.flows[f] for f in flows]
        lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
        entry_link = np.concatenate(paths) if paths else np.zeros(0, dtype=np.int64)
        entry_flow = np.repeat(np.arange(len(flows)), lengths)
        links_used, local = np.unique(entry_link, return_inverse=True)
        # Per flow its (local) links, per link its flows, as slices: each round touches only what it freezes.
        flow_ptr = np.concatenate(([0], np.cumsum(lengths))).tolist()
        order = np.argsort(local, kind="stable")
        by_link = entry_flow[order]
        link_ptr = np.concatenate(([0], np.cumsum(np.bincount(local, minlength=len(links_used))))).tolist()
        remaining = self.capacity[links_used].copy()
        counts = np.bincount(local, minlength=len(links_used)).astype(float)
        caps = np.fromiter((self.caps.get(f, math.inf) for f in flows), dtype=float, count=len(flows))
        rate = caps.copy()  # a flow over no link (same host) gets its cap, or is unconstrained
        unfrozen = lengths > 0
        left = int(unfrozen.sum())
        while left:
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(counts > 0, remaining / counts, np.inf)
            level = float(share.min())
            capped = np.flatnonzero(unfrozen & (caps <= level))
            if len(capped):  # flows wanting less than any fair share freeze at their cap first
                level = float(caps[capped].min())
                frozen = capped[caps[capped] <= level * (1 + 1e-12)]
            else:
                bottlenecks = np.flatnonzero(share <= level * (1 + 1e-12))
                candidates = np.unique(np.concatenate([by_link[link_ptr[k]:link_ptr[k + 1]] for k in bottlenecks]))
                frozen = candidates[unfrozen[candidates]]
            rate[frozen] = level
            unfrozen[frozen] = False
            left -= len(frozen)
            freed = np.bincount(np.concatenate([local[flow_ptr[f]:flow_ptr[f + 1]] for f in frozen.tolist()]),
                                minlength=len(links_used))
            counts -= freed
            remaining -= freed * level
            np.maximum(remaining, 0.0, out=remaining)
        rates = self.rates
        carried = self.carried
        changed = self.changed
        for flow, value, path in zip(flows, rate.tolist(), paths, strict=True):
            old = rates.get(flow)
            if old == value:
                continue
            rates[flow] = value
            changed.append(flow)
            if math.isfinite(value):
                carried[path] += value - (old if old is not None and math.isfinite(old) else 0.0)


def ring_allreduce_time(participants: int, size_bytes: float, bandwidth: float, latency: float) -> float:
    """Ring all-reduce on an idle network: 2 (n - 1) steps, each moving size / n bytes over the slowest
    link and paying one link latency: 2 (n - 1) / n x S / B + 2 (n - 1) x latency."""
    if participants <= 1:
        return 0.0
    steps = 2 * (participants - 1)
    return steps / participants * size_bytes / bandwidth + steps * latency
