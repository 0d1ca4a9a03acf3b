"""Flows sharing link bandwidth max-min fairly, recomputed only when a flow starts or ends.

The rates are the max-min fair allocation, the one progressive filling gives: all flows rise together,
a link that fills freezes its rising flows at that level, and the rest rise on. A flow may carry a cap
(the most it wants, e.g. a dataset stream's rate): it acts as a private link of that capacity. The
allocation is unique, and a feasible allocation is it exactly when every flow has a bottleneck: its
cap, or a full link on which no flow is faster (Bertsekas and Gallager). After each change `changed`
lists the flows whose rate moved and `carried` holds each link's load. Starts and ends may be
deferred (`defer=True`) and then absorbed together by one `commit`: one change, however many.

A change is absorbed in one of three ways, cheapest first:

- Local pass (most changes in a sparse network): progressive filling warm-started from the previous
  solution. Below the level where the change first binds (the rate of a removed flow, or where a link
  of an added flow fills with it) filling is what it was, so it starts there; and it follows only the
  links on which something departs from the previous course. A link followed from level t starts with
  the previous state at t (flows below t frozen at their rates, the others rising). Flows on followed
  links that have not departed are checked at their previous rate: a link of theirs that still fills
  there (a link not followed saturates where it did before) keeps them there; otherwise they depart
  and rise on. A flow frozen early by a followed link departs too. The rates are those of full
  progressive filling; only the flows met are touched, and the pass gives up past a budget.
- Structure pass (a change that spreads over much of the network, e.g. random pairs on a fat-tree,
  where one start moves a fifth of all rates a little): the previous solution says which link (or
  cap) holds each flow, and the structure rarely changes where the rates do. Keeping it, with new
  flows guessed onto the link of theirs that fills first, the rates solve one linear system:
  every holding link is full, and the flows it holds share what the others leave. Each flow is held
  by the holding link of its path with the lowest estimated level, so the system is triangular in
  that order and never singular (solved dense by LAPACK up to 512 unknowns, sparse beyond). The
  result is verified against the bottleneck condition (no link overfull, no flow over its cap, no
  flow faster than the level of a holding link it crosses); where that fails the structure is
  repaired at the failing links (a flow faster than the level at which the link fills moves onto it)
  and solved again, usually once or twice. Only a verified result is used, so the rates are exact
  whatever the repairs did; if they do not converge, the last resort is:
- Full refill: progressive filling of every flow, vectorised with numpy (one round per rate level).

The local pass is here; the structure pass and the full refill are in flows_structure.py.

Exact means to float rounding: a new rate within 1e-12 (relative) of the old one keeps the old value
and is not reported as changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from heapq import heappop, heappush
from itertools import chain

import numpy as np

from dcsim.engine.flows_structure import _FULL, _TIE, StructurePass, _fill_level

# A local pass costs about 5 us per flow it touches; a structure pass about 1 ms plus 0.25 us per
# (flow, link) pair (measured on the fat-tree benchmark). So a local pass may touch
# _LOCAL_BASE + pairs / _LOCAL_SHARE flows (about half a structure pass) before it gives up. After k
# give-ups in a row the next min(2^(k-1), _LOCAL_REST) changes go straight to the structure pass: the
# network is in a regime where changes spread far.
_LOCAL_BASE = 200
_LOCAL_SHARE = 40
_LOCAL_REST = 16
# Before trying: a change whose links carry more than budget / _NEAR_SHARE flows goes straight to the
# structure pass; one with at most budget / _NEAR_SMALL is tried locally even right after give-ups.
_NEAR_SHARE = 3
_NEAR_SMALL = 8


class FlowNetwork(StructurePass):
    def __init__(self, capacities: Sequence[float]) -> None:
        self.capacity = np.asarray(capacities, dtype=float)
        self.flows: dict[int, np.ndarray] = {}  # flow id -> link indexes
        self.rates: dict[int, float] = {}
        self.caps: dict[int, float] = {}  # flow id -> the most it wants (only flows with a cap)
        self.carried = np.zeros(len(self.capacity))  # bytes/s on each link
        self.changed: list[int] = []  # flows (still present) whose rate the last change moved, ascending
        self.on_link: list[set[int]] = [set() for _ in range(len(self.capacity))]
        self._next = 0
        self.recomputed_flows = 0  # total flows re-derived by changes: the cost measure benchmarks report
        self._paths: dict[int, list[int]] = {}  # flow id -> link indexes as Python ints (the hot loops use these)
        self._bandwidth: list[float] = self.capacity.tolist()
        # Per link, the rate of the flows it holds: the largest rate on it when it is saturated, else inf.
        self._level: list[float] = [math.inf] * len(self.capacity)
        # Flows over at least one link as rows ("slots") of arrays, for the vectorised passes.
        self._slot: dict[int, int] = {}  # flow id -> its slot
        self._free: list[int] = []  # free slots, the lowest last
        self._slot_links = np.full((0, 1), -1, dtype=np.int64)  # slot -> its links, padded with -1
        self._slot_flow = np.zeros(0, dtype=np.int64)  # slot -> flow id, -1 when free
        self._slot_cap = np.zeros(0)
        self._slot_rate = np.zeros(0)
        self._slot_average = np.zeros(0)  # what a flow moves on average, if set (else nan: its rate)
        self._pair_count = 0  # (flow, link) pairs of the flows in slots
        self._rest = 0  # changes left before a local pass is tried again
        self._backoff = 0  # the rest after the last give-up
        self.passes = {"local": 0, "structure": 0, "full": 0}  # how changes were absorbed (benchmarks)
        self._pairs_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._staged_added: dict[int, None] = {}  # deferred starts, in order
        self._staged_gone: list[tuple[list[int], float]] = []  # deferred ends: (links, rate)

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
        ids = []
        linked: list[list[int]] = []
        for links, cap in zip(paths, wanted, strict=True):
            flow = self._next
            self._next += 1
            path = sorted(set(int(link) for link in links))
            self.flows[flow] = np.asarray(path, dtype=np.int64)
            self._paths[flow] = path
            if cap < math.inf:
                self.caps[flow] = cap
            for link in path:
                self.on_link[link].add(flow)
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
            rate = self.rates.pop(flow, 0.0)
            self.caps.pop(flow, None)
            for link in links:
                self.on_link[link].discard(flow)
            slot = self._slot.pop(flow, None)
            if slot is not None:
                self._pairs_cache = None
                self._pair_count -= len(links)
                self._slot_links[slot] = -1
                self._slot_flow[slot] = -1
                self._slot_average[slot] = math.nan
                self._free.append(slot)
            if flow in self._staged_added:  # started and ended before any recomputation: no trace
                del self._staged_added[flow]
            else:
                self._staged_gone.append((links, rate))
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
        self._pair_count += sum(lengths)
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
            link = self._slot_links[slot, column]
            slot.setflags(write=False)
            link.setflags(write=False)
            self._pairs_cache = slot, link
        return self._pairs_cache

    # --- a change -------------------------------------------------------------------------------
    def _update(self, added: list[int], gone: list[tuple[list[int], float]]) -> None:
        rates = self.rates
        changed: list[int] = []
        self.changed = changed
        linked = []
        for flow in added:
            if self._paths[flow]:
                linked.append(flow)
            else:  # a flow over no link (same host) gets its cap, or is unconstrained
                rates[flow] = self.caps.get(flow, math.inf)
                changed.append(flow)
        if not linked and not any(links for links, _rate in gone):
            changed.sort()
            return
        budget = _LOCAL_BASE + self._pair_count // _LOCAL_SHARE
        # The flows on the links the change touches: a local pass touches those and, as the change
        # spreads, about two or three times as many (measured on the Philly replay's leaf-spine).
        on_link = self.on_link
        near = sum(len(on_link[link]) for flow in linked for link in self._paths[flow])
        near += sum(len(on_link[link]) for links, _rate in gone for link in links)
        if near > budget // _NEAR_SHARE or len(linked) > budget or (self._rest and near > budget // _NEAR_SMALL):
            self._rest = max(0, self._rest - 1)
            self._global_pass(linked)
        elif self._local_pass(linked, gone, budget):
            self._backoff = 0
        else:
            self._backoff = min(max(1, 2 * self._backoff), _LOCAL_REST)
            self._rest = self._backoff
            self._global_pass(linked)
        changed.sort()

    def _start_level(self, added: list[int], gone: list[tuple[list[int], float]]) -> tuple[float, set[int]]:
        """The level below which progressive filling with the change is the one without it, and the links
        the change touches. Removing a flow of rate r changes nothing below r: its links filled at r or
        later with it, so not earlier without it. An added flow first binds at its cap or where a link
        of its fills with it rising (a cap only makes that later, so leaving caps out there keeps a
        lower bound)."""
        start = math.inf
        seeds: set[int] = set()
        for links, rate in gone:
            if links:
                start = min(start, rate)
                seeds.update(links)
        arriving: dict[int, int] = {}
        for flow in added:
            start = min(start, self.caps.get(flow, math.inf))
            for link in self._paths[flow]:
                arriving[link] = arriving.get(link, 0) + 1
        rates = self.rates
        for link, count in arriving.items():
            seeds.add(link)
            others = [rates[g] for g in self.on_link[link] if g in rates]
            start = min(start, _fill_level(self._bandwidth[link], others, count))
        return start * (1 - 1e-9), seeds

    def _local_pass(self, added: list[int], gone: list[tuple[list[int], float]], budget: int) -> bool:
        """Progressive filling warm-started from the previous solution (see the module docstring).
        Returns False, having changed nothing, when it would touch more than `budget` flows."""
        rates = self.rates
        paths = self._paths
        caps = self.caps
        start, seeds = self._start_level(added, gone)
        on_link = self.on_link
        bandwidth = self._bandwidth
        level = self._level
        inf = math.inf
        tie = 1 + _TIE
        # Events, by level: a link's share (code -1 - link), an undisturbed flow reaching its previous
        # rate (2 flow), a disturbed flow reaching its cap (2 flow + 1). A link has one entry at a time,
        # a lower bound of its share: its share only rises as its flows freeze.
        heap: list[tuple[float, int]] = []
        remaining: dict[int, float] = {}  # followed links: capacity left over their frozen flows
        unfrozen: dict[int, int] = {}  # followed links: flows on them still rising
        # Flows this pass has met: their rate once frozen (kept or new); RISING while undisturbed and
        # rising towards their previous rate; DISTURBED while rising on a course of their own.
        state: dict[int, float] = {}
        rising_old, disturbed = -1.0, -2.0

        def follow(links: list[int], now: float) -> None:
            """Links (of a newly disturbed flow) start following their own course at level `now`; up to
            there it is the previous one: flows below `now` frozen at their rates, the rest rising."""
            for link in links:
                if link in remaining:
                    continue
                room = bandwidth[link]
                rising = 0
                for g in on_link[link]:
                    mark = state.get(g)
                    if mark is None:
                        rate = rates[g]
                        if rate < now:
                            room -= rate
                            continue
                        state[g] = rising_old
                        heappush(heap, (rate, 2 * g))
                        rising += 1
                    elif mark < 0:
                        rising += 1
                    else:
                        room -= mark
                remaining[link] = room
                unfrozen[link] = rising
                if rising:
                    heappush(heap, (room / rising, -1 - link))

        for flow in added:
            state[flow] = disturbed
            cap = caps.get(flow, inf)
            if cap < inf:
                heappush(heap, (cap, 2 * flow + 1))
        follow(sorted(seeds), start)
        now = start
        while heap:
            if len(state) > budget:
                self.recomputed_flows += len(state)
                return False
            value, code = heappop(heap)
            if code < 0:  # a link fills: its rising flows freeze at its share
                link = -1 - code
                rising = unfrozen[link]
                if not rising:
                    continue  # all its flows froze elsewhere
                share = remaining[link] / rising
                if share > value:  # its share rose since (flows froze elsewhere): queue it again
                    heappush(heap, (share, code))
                    continue
                if share > now:
                    now = share
                for g in on_link[link]:
                    mark = state.get(g, 0.0)
                    if mark >= 0:
                        continue  # frozen: this pass, or below the level the link was followed from
                    rate = now
                    if mark == rising_old:
                        rate = rates[g]
                        if rate > now * tie:
                            state[g] = disturbed  # frozen below its previous rate
                            follow(paths[g], now)
                            rate = now
                    state[g] = rate
                    for on in paths[g]:
                        if on in remaining:
                            remaining[on] -= rate
                            unfrozen[on] -= 1
                continue
            flow = code >> 1
            mark = state[flow]
            if code & 1:  # a disturbed flow reaches its cap
                if mark != disturbed:
                    continue
            else:  # an undisturbed flow reaches its previous rate: does anything stop it there?
                if mark != rising_old:
                    continue
                limit = value * tie
                stops = caps.get(flow, inf) <= limit
                if not stops:
                    for link in paths[flow]:
                        if link in remaining:
                            if remaining[link] <= limit * unfrozen[link]:
                                stops = True
                                break
                        elif level[link] <= limit:
                            stops = True
                            break
                if not stops:
                    state[flow] = disturbed  # it rises past its previous rate
                    follow(paths[flow], max(now, value))
                    cap = caps.get(flow, inf)
                    if cap < inf:
                        heappush(heap, (cap, 2 * flow + 1))
                    continue
            if value > now:
                now = value
            state[flow] = value
            for link in paths[flow]:
                if link in remaining:
                    remaining[link] -= value
                    unfrozen[link] -= 1
        self.passes["local"] += 1
        self.recomputed_flows += len(state)
        changed = self.changed
        slot_of = self._slot
        slot_rate = self._slot_rate
        for flow, rate in state.items():
            old = rates.get(flow)
            if old is None or abs(rate - old) > old * _TIE:  # float noise is no change
                rates[flow] = rate
                slot_rate[slot_of[flow]] = rate
                changed.append(flow)
        followed = list(remaining)
        left = np.fromiter(remaining.values(), dtype=float, count=len(followed))
        self.carried[followed] = self.capacity[followed] - left
        for link, spare in zip(followed, left.tolist(), strict=True):
            sharing = on_link[link]
            level[link] = max([rates[g] for g in sharing]) if sharing and spare <= bandwidth[link] * _FULL else inf
        return True


def ring_allreduce_time(participants: int, size_bytes: float, bandwidth: float, latency: float) -> float:
    """Ring all-reduce on an idle network: 2 (n - 1) steps, each moving size / n bytes over the slowest
    link and paying one link latency: 2 (n - 1) / n x S / B + 2 (n - 1) x latency."""
    if participants <= 1:
        return 0.0
    steps = 2 * (participants - 1)
    return steps / participants * size_bytes / bandwidth + steps * latency
