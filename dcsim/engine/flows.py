"""Flows sharing link bandwidth max-min fairly, recomputed only when a flow starts or ends.

The rates are the max-min fair allocation, the one progressive filling gives: all flows rise together,
a link that fills freezes its rising flows at that level, and the rest rise on. A flow may carry a cap
(the most it wants, e.g. a dataset stream's rate): it acts as a private link of that capacity. The
allocation is unique. After each change `changed` lists the flows whose rate moved and `carried` holds
each link's load. Starts and ends may be deferred (`defer=True`) and then absorbed together by one
`commit`: one change, however many.

A change is absorbed incrementally: only flows connected to the links it touches (through links they
share, transitively: its component) can move, so only that component is refilled, by compiled
progressive filling (flows_fill.py); every other flow keeps its rate exactly. That refill is exact to
float rounding: a new rate within 1e-12 (relative) of the old one keeps the old value and is not
reported as changed. Around it, some work is linear in all flows (the (flow, link) pair arrays, the
index the refill builds over them, every link's load): cheap compiled or in numpy, and simpler than
keeping them up to date piece by piece.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain

import numpy as np

from dcsim.engine.flows_fill import refill

_TIE = 1e-12  # relative: a new rate this close to the old one is float noise, not a change


class FlowNetwork:
    def __init__(self, capacities: Sequence[float]) -> None:
        self.capacity = np.asarray(capacities, dtype=float)
        self.flows: dict[int, np.ndarray] = {}  # flow id -> link indexes
        self.rates: dict[int, float] = {}
        self.caps: dict[int, float] = {}  # flow id -> the most it wants (only flows with a cap)
        self.carried = np.zeros(len(self.capacity))  # bytes/s on each link
        self.changed: list[int] = []  # flows (still present) whose rate the last change moved, ascending
        self._next = 0
        self.recomputed_flows = 0  # total flows re-derived by changes: the cost measure benchmarks report
        self._paths: dict[int, list[int]] = {}  # flow id -> link indexes as Python ints
        # Flows over at least one link as rows ("slots") of arrays, which the compiled refill reads.
        self._slot: dict[int, int] = {}  # flow id -> its slot
        self._free: list[int] = []  # free slots, taken from the end
        self._slot_links = np.full((0, 1), -1, dtype=np.int64)  # slot -> its links, padded with -1
        self._slot_flow = np.zeros(0, dtype=np.int64)  # slot -> flow id, -1 when free
        self._slot_cap = np.zeros(0)
        self._slot_rate = np.zeros(0)
        self._slot_average = np.zeros(0)  # what a flow moves on average, if set (else nan: its rate)
        self._pairs_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._staged_added: dict[int, None] = {}  # deferred starts, in order
        self._staged_gone: list[list[int]] = []  # deferred ends: their links

    def add(self, links: Sequence[int], cap: float = math.inf) -> int:
        """Start a flow over `links`; return its id. Rates of its component are recomputed."""
        return self.add_many([links], [cap])[0]

    def add_many(self, paths: Sequence[Sequence[int]], caps: Sequence[float] | None = None, *,
                 defer: bool = False) -> list[int]:
        """Start several flows at one instant, with one recomputation (none yet with `defer`: their
        rates come with the next `commit`)."""
        wanted = [math.inf if caps is None else float(caps[index]) for index in range(len(paths))]
        for cap in wanted:
            if not cap > 0:
                raise ValueError(f"flow cap must be > 0, got {cap}")
        sorted_paths = [sorted(set(int(link) for link in links)) for links in paths]
        for path in sorted_paths:  # checked before anything changes (the compiled refill trusts them)
            if path and (path[0] < 0 or path[-1] >= len(self.capacity)):
                raise IndexError(f"flow over link {path[0] if path[0] < 0 else path[-1]}: "
                                 f"links are 0 to {len(self.capacity) - 1}")
        ids = []
        linked: list[list[int]] = []
        for path, cap in zip(sorted_paths, wanted, strict=True):
            flow = self._next
            self._next += 1
            self.flows[flow] = np.asarray(path, dtype=np.int64)
            self._paths[flow] = path
            if cap < math.inf:
                self.caps[flow] = cap
            ids.append(flow)
            if path:
                linked.append(path)
        self._take_slots([flow for flow in ids if self._paths[flow]], linked)
        self._staged_added.update(dict.fromkeys(ids))
        if not defer:
            self.commit()
        return ids

    def remove(self, flow: int) -> None:
        self.remove_many([flow])

    def remove_many(self, flows: Sequence[int], *, defer: bool = False) -> None:
        """End several flows at one instant, with one recomputation (none yet with `defer`)."""
        for flow in flows:
            del self.flows[flow]
            links = self._paths.pop(flow)
            self.rates.pop(flow, None)
            self.caps.pop(flow, None)
            slot = self._slot.pop(flow, None)
            if slot is not None:
                self._pairs_cache = None
                self._slot_links[slot] = -1
                self._slot_flow[slot] = -1
                self._slot_average[slot] = math.nan
                self._free.append(slot)
            if flow in self._staged_added:  # started and ended before any recomputation: no trace
                del self._staged_added[flow]
            else:
                self._staged_gone.append(links)
        if not defer:
            self.commit()

    def commit(self) -> None:
        """Recompute the rates once for every start and end deferred since the last recomputation."""
        added, gone = list(self._staged_added), self._staged_gone
        self._staged_added, self._staged_gone = {}, []
        self._update(added, gone)

    @property
    def pending(self) -> bool:
        """Starts or ends are waiting for `commit` (the rates do not include them yet)."""
        return bool(self._staged_added or self._staged_gone)

    def rate(self, flow: int) -> float:
        return self.rates[flow]

    def utilization(self) -> np.ndarray:
        """Carried traffic over capacity, per link."""
        return np.maximum(self.carried, 0.0) / self.capacity

    def set_averages(self, flows: Sequence[int], averages: Sequence[float]) -> None:
        """What these flows move on average (a flow that sends only part of the time moves less than
        its rate), for `average_load`; a flow without one moves its rate."""
        slot_of = self._slot
        slots = [slot_of.get(flow, -1) for flow in flows]
        if -1 in slots:  # flows over no link have no slot (and move nothing over a link)
            keep = [i for i, slot in enumerate(slots) if slot >= 0]
            slots, averages = [slots[i] for i in keep], [averages[i] for i in keep]
        self._slot_average[slots] = averages

    def average_load(self) -> np.ndarray:
        """Per link, what its flows move on average (after a commit: no deferred change)."""
        pair_slot, pair_link = self._pairs()
        average = self._slot_average[pair_slot]
        moved = np.where(np.isnan(average), self._slot_rate[pair_slot], average)
        return np.bincount(pair_link, weights=moved, minlength=len(self.capacity))

    # --- slots ----------------------------------------------------------------------------------
    def _take_slots(self, flows: list[int], paths: list[list[int]]) -> None:
        if not flows:
            return
        short = len(flows) - len(self._free)
        if short > 0:
            size = len(self._slot_flow)
            grown = max(size + short, 2 * size, 64)
            self._slot_links = np.vstack([self._slot_links,
                                          np.full((grown - size, self._slot_links.shape[1]), -1, dtype=np.int64)])
            self._slot_flow = np.concatenate([self._slot_flow, np.full(grown - size, -1, dtype=np.int64)])
            self._slot_cap = np.concatenate([self._slot_cap, np.full(grown - size, math.inf)])
            self._slot_rate = np.concatenate([self._slot_rate, np.zeros(grown - size)])
            self._slot_average = np.concatenate([self._slot_average, np.full(grown - size, math.nan)])
            self._free.extend(range(grown - 1, size - 1, -1))
        lengths = [len(path) for path in paths]
        width = max(lengths)
        if width > self._slot_links.shape[1]:
            pad = np.full((len(self._slot_links), width - self._slot_links.shape[1]), -1, dtype=np.int64)
            self._slot_links = np.hstack([self._slot_links, pad])
        self._pairs_cache = None
        slots = [self._free.pop() for _ in flows]
        for flow, slot in zip(flows, slots, strict=True):
            self._slot[flow] = slot
        rows = np.asarray(slots, dtype=np.int64)
        count = np.asarray(lengths, dtype=np.int64)
        starts = np.cumsum(count) - count
        cols = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(starts, count)
        self._slot_links[np.repeat(rows, count), cols] = np.fromiter(chain.from_iterable(paths), dtype=np.int64,
                                                                      count=int(count.sum()))
        self._slot_flow[rows] = flows
        self._slot_cap[rows] = [self.caps.get(flow, math.inf) for flow in flows]
        self._slot_rate[rows] = math.nan

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(slot, link) of every flow's every link, by slot (kept until flows start or end)."""
        if self._pairs_cache is None:
            slot, column = np.nonzero(self._slot_links >= 0)
            slot = np.ascontiguousarray(slot)  # one array layout, so the compiled refill has one signature
            link = self._slot_links[slot, column]
            slot.setflags(write=False)
            link.setflags(write=False)
            self._pairs_cache = slot, link
        return self._pairs_cache

    # --- a change -------------------------------------------------------------------------------
    def _update(self, added: list[int], gone: list[list[int]]) -> None:
        rates = self.rates
        changed: list[int] = []
        self.changed = changed
        seeds: list[int] = []
        for flow in added:
            path = self._paths[flow]
            if path:
                seeds.extend(path)
            else:  # a flow over no link (same host) gets its cap, or is unconstrained
                rates[flow] = self.caps.get(flow, math.inf)
                changed.append(flow)
        for links in gone:
            seeds.extend(links)
        if seeds:
            pair_slot, pair_link = self._pairs()
            moved, load, refilled = refill(pair_slot, pair_link, self._slot_cap, self.capacity, self._slot_rate,
                                           np.asarray(seeds, dtype=np.int64), _TIE)
            self.carried[:] = load
            self.recomputed_flows += refilled
            for flow, rate in zip(self._slot_flow[moved].tolist(), self._slot_rate[moved].tolist(), strict=True):
                rates[flow] = rate
                changed.append(flow)
        changed.sort()


def ring_allreduce_time(participants: int, size_bytes: float, bandwidth: float, latency: float) -> float:
    """Ring all-reduce on an idle network: 2 (n - 1) steps, each moving size / n bytes over the slowest
    link and paying one link latency: 2 (n - 1) / n x S / B + 2 (n - 1) x latency."""
    if participants <= 1:
        return 0.0
    steps = 2 * (participants - 1)
    return steps / participants * size_bytes / bandwidth + steps * latency
