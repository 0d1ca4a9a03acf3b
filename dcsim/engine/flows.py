"""Flows sharing link bandwidth max-min fairly, recomputed only when a flow starts or ends.

Max-min fairness by progressive filling, vectorised: every round, each link offers its remaining
capacity split evenly over its unfrozen flows; the links with the smallest share are bottlenecks,
and their flows are frozen at that share. Rounds equal the number of distinct rate levels, each
a few numpy passes over the (flow, link) pairs, not a Python loop over them.

Incremental: a start or end can change only the rates of flows connected to it through shared
links (transitively), so only that component is refilled; flows elsewhere keep their rates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class FlowNetwork:
    def __init__(self, capacities: Sequence[float]) -> None:
        self.capacity = np.asarray(capacities, dtype=float)
        self.flows: dict[int, np.ndarray] = {}  # flow id -> link indexes
        self.rates: dict[int, float] = {}
        self.on_link: list[set[int]] = [set() for _ in range(len(self.capacity))]
        self._next = 0
        self.recomputed_flows = 0  # total flows refilled: the cost measure benchmarks report

    def add(self, links: Sequence[int]) -> int:
        """Start a flow over `links`; return its id. Rates of its component are recomputed."""
        return self.add_many([links])[0]

    def add_many(self, paths: Sequence[Sequence[int]]) -> list[int]:
        """Start several flows at one instant, with one recomputation."""
        ids = []
        touched: set[int] = set()
        for links in paths:
            flow = self._next
            self._next += 1
            path = np.asarray(sorted(set(links)), dtype=np.int64)
            self.flows[flow] = path
            for link in path:
                self.on_link[link].add(flow)
            touched.update(int(link) for link in path)
            ids.append(flow)
        self._refill(self._component(np.asarray(sorted(touched), dtype=np.int64)))
        return ids

    def remove(self, flow: int) -> None:
        path = self.flows.pop(flow)
        self.rates.pop(flow, None)
        for link in path:
            self.on_link[link].discard(flow)
        self._refill(self._component(path))

    def rate(self, flow: int) -> float:
        return self.rates[flow]

    def utilization(self) -> np.ndarray:
        """Carried traffic over capacity, per link."""
        used = np.zeros(len(self.capacity))
        for flow, path in self.flows.items():
            used[path] += self.rates[flow]
        return used / self.capacity

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
        rate = np.full(len(flows), np.inf)  # a flow over no link (same host) is unconstrained
        unfrozen = lengths > 0
        left = int(unfrozen.sum())
        while left:
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(counts > 0, remaining / counts, np.inf)
            level = float(share.min())
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
        for flow, value in zip(flows, rate.tolist(), strict=True):
            self.rates[flow] = value


def ring_allreduce_time(participants: int, size_bytes: float, bandwidth: float, latency: float) -> float:
    """Ring all-reduce on an idle network: 2 (n - 1) steps, each moving size / n bytes over the slowest
    link and paying one link latency: 2 (n - 1) / n x S / B + 2 (n - 1) x latency."""
    if participants <= 1:
        return 0.0
    steps = 2 * (participants - 1)
    return steps / participants * size_bytes / bandwidth + steps * latency
