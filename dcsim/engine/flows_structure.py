"""The structure pass and the full refill of FlowNetwork (see dcsim/engine/flows.py for both), and the
tolerances both modules share. A mixin: FlowNetwork owns the state these methods read and write."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.linalg.lapack import dtrtrs
from scipy.sparse import csc_matrix
from scipy.sparse.linalg import MatrixRankWarning, spsolve

_TIE = 1e-12  # relative: rates this close are one rate level (float noise, not a different level)
_FULL = 1e-9  # relative: a link this close to its capacity is saturated
_CHECK = 1e-10  # relative tolerance of the structure pass's verification
_REPAIRS = 16  # structure solves per change before the full refill
_DENSE = 512  # systems up to this size are solved dense (a small sparse solve costs more in overhead)


def _fill_level(capacity: float, others: list[float], rising: int) -> float:
    """The level at which a link fills when `rising` flows rise on it and the others stop at their
    rates: the s with sum(min(r, s) for r in others) + rising * s = capacity (inf if it never fills)."""
    room = capacity
    count = len(others)
    for i, rate in enumerate(sorted(others)):
        level = room / (count - i + rising)
        if level <= rate:
            return level
        room -= rate
    return room / rising if rising else math.inf


def _solve_lower(rows: np.ndarray, cols: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the lower triangular system with a 1 at every (rows[i], cols[i]) (repeats add up)."""
    count = len(rhs)
    if not count:
        return np.zeros(0)
    if count <= _DENSE:  # built transposed in C order: the matrix in the Fortran order LAPACK takes
        matrix = np.bincount(cols * count + rows, weights=np.ones(len(rows)), minlength=count * count)
        solution, info = dtrtrs(matrix.reshape(count, count).T, rhs, lower=1)
        return np.asarray(solution) if info == 0 else np.full(count, math.nan)  # info > 0: singular
    sparse = csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(count, count))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatrixRankWarning)
        return np.atleast_1d(spsolve(sparse, rhs, permc_spec="NATURAL"))


class StructurePass:
    """Vectorised passes over every flow; FlowNetwork sets these attributes."""

    capacity: np.ndarray
    rates: dict[int, float]
    caps: dict[int, float]
    carried: np.ndarray
    changed: list[int]
    on_link: list[set[int]]
    recomputed_flows: int
    passes: dict[str, int]
    _paths: dict[int, list[int]]
    _bandwidth: list[float]
    _level: list[float]
    _slot: dict[int, int]
    _slot_links: np.ndarray
    _slot_flow: np.ndarray
    _slot_cap: np.ndarray
    _slot_rate: np.ndarray

    def _pairs(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _global_pass(self, added: list[int]) -> None:
        """The structure pass, or if its repairs do not converge the full refill (module docstring)."""
        slot_flow = self._slot_flow
        alive = slot_flow >= 0
        pair_slot, pair_link = self._pairs()
        fresh = np.asarray([self._slot[flow] for flow in added], dtype=np.int64)
        rate = self._solve_structure(pair_slot, pair_link, fresh)
        if rate is None:
            rate = self._full_refill(pair_slot, pair_link)
            self.passes["full"] += 1
        else:
            self.passes["structure"] += 1
        self.recomputed_flows += int(alive.sum())
        old = self._slot_rate
        with np.errstate(invalid="ignore"):
            rate = np.where(np.abs(rate - old) <= old * _TIE, old, rate)  # float noise is no change
            moved = np.flatnonzero(alive & ~(old == rate))
        self._slot_rate = np.where(alive, rate, 0.0)
        rates = self.rates
        changed = self.changed
        for flow, value in zip(slot_flow[moved].tolist(), rate[moved].tolist(), strict=True):
            rates[flow] = value
            changed.append(flow)
        rate = self._slot_rate
        load = np.bincount(pair_link, weights=rate[pair_slot], minlength=len(self.capacity))
        self.carried[:] = load
        top = np.zeros(len(self.capacity))
        np.maximum.at(top, pair_link, rate[pair_slot])
        self._level = np.where(load >= self.capacity * (1 - _FULL), top, math.inf).tolist()

    def _solve_structure(self, pair_slot: np.ndarray, pair_link: np.ndarray, fresh: np.ndarray) -> np.ndarray | None:
        """Rates per slot by the structure pass, or None when its repairs do not converge."""
        capacity = self.capacity
        links = len(capacity)
        slots = len(self._slot_flow)
        alive = self._slot_flow >= 0
        cap = self._slot_cap
        old = self._slot_rate
        level = np.asarray(self._level)
        is_fresh = np.zeros(slots, dtype=bool)
        is_fresh[fresh] = True
        # What holds each flow in the previous solution: -1 its cap, else a link whose level is its rate.
        holder = np.full(slots, -2, dtype=np.int64)
        at_cap = alive & ~is_fresh & (old >= cap * (1 - _TIE))
        holder[at_cap] = -1
        with np.errstate(invalid="ignore"):
            candidate = np.flatnonzero(~is_fresh[pair_slot] & ~at_cap[pair_slot]
                                       & (level[pair_link] <= old[pair_slot] * (1 + _CHECK)))
        held = pair_slot[candidate]
        first = np.ones(len(held), dtype=bool)  # pairs come by slot: keep each slot's first candidate
        np.not_equal(held[1:], held[:-1], out=first[1:])
        holder[held[first]] = pair_link[candidate[first]]
        estimate = level.copy()  # a guess of each link's level, to order the unknowns
        loose = np.flatnonzero(alive & (holder == -2))  # new flows (and any the tolerance missed)
        if len(loose) <= 64:
            self._guess_exact(loose, holder, estimate)
        else:
            self._guess_rough(loose, holder, estimate, pair_link)
        pair_cap = cap[pair_slot]
        first_pair = np.flatnonzero(pair_slot[:-1] != pair_slot[1:]) + 1  # where each slot's pairs start
        first_pair = np.concatenate(([0], first_pair)) if len(pair_slot) else first_pair
        present = pair_slot[first_pair]
        for _attempt in range(_REPAIRS):
            # Each flow held by a link is held by the held link of its path with the lowest estimated
            # level (ties by link index): in that order the system is lower triangular with a positive
            # diagonal, never singular. Links no flow picks are no longer held; repeat until stable.
            while True:
                is_held = np.zeros(links, dtype=bool)
                is_held[holder[holder >= 0]] = True
                held_links = np.flatnonzero(is_held)
                unknowns = held_links[np.argsort(estimate[held_links], kind="stable")]
                count = len(unknowns)
                index = np.full(links, count, dtype=np.int64)
                index[unknowns] = np.arange(count)
                row = index[pair_link]
                lowest = np.minimum.reduceat(row, first_pair) if len(first_pair) else row
                by_link_slot = holder[present] >= 0
                canonical = holder.copy()
                canonical[present[by_link_slot]] = unknowns[lowest[by_link_slot]]
                if np.array_equal(canonical, holder):
                    break
                holder = canonical
            pair_holder = holder[pair_slot]
            on_held = row < count
            by_link = on_held & (pair_holder >= 0)
            by_cap = on_held & (pair_holder == -1)
            rhs = capacity[unknowns] - np.bincount(row[by_cap], weights=pair_cap[by_cap], minlength=count)
            share = _solve_lower(row[by_link], index[pair_holder[by_link]], rhs)
            if not np.isfinite(share).all():
                return None  # cannot happen (the system is triangular), but never use a broken solve
            rate = np.where(alive, cap, 0.0)
            by_share = holder >= 0
            rate[by_share] = share[index[holder[by_share]]]
            # Verify: no link overfull, no flow over its cap, no flow faster than a holding link's level.
            load = np.bincount(pair_link, weights=rate[pair_slot], minlength=links)
            held_level = np.full(links, math.inf)
            held_level[unknowns] = share
            faster = rate[pair_slot] > held_level[pair_link] * (1 + _CHECK)
            failing = set(np.flatnonzero(load > capacity * (1 + _CHECK)).tolist())
            failing.update(pair_link[faster].tolist())
            failing.update(unknowns[share <= 0].tolist())
            failing.update(unknowns[np.abs(load[unknowns] - capacity[unknowns]) > capacity[unknowns] * _CHECK].tolist())
            over_cap = np.flatnonzero(alive & (rate > cap * (1 + _CHECK)))
            if not failing and not len(over_cap):
                return rate
            holder[over_cap] = -1
            estimate[unknowns] = share
            self._repair(sorted(failing), holder, rate, estimate)
        return None

    def _guess_exact(self, loose: np.ndarray, holder: np.ndarray, estimate: np.ndarray) -> None:
        """Hold each loose flow by the link of theirs that fills first with them (or by its cap)."""
        slot_of = self._slot
        loose_flows = self._slot_flow[loose].tolist()
        arriving: dict[int, int] = {}
        for flow in loose_flows:
            for link in self._paths[flow]:
                arriving[link] = arriving.get(link, 0) + 1
        settled = set(loose_flows)
        fills: dict[int, float] = {}
        for link, count in arriving.items():
            others = [self.rates[g] for g in self.on_link[link] if g not in settled]
            fills[link] = _fill_level(self._bandwidth[link], others, count)
            estimate[link] = min(estimate[link], fills[link])
        for flow in loose_flows:
            first = min(self._paths[flow], key=fills.__getitem__)
            holder[slot_of[flow]] = -1 if self.caps.get(flow, math.inf) <= fills[first] else first

    def _guess_rough(self, loose: np.ndarray, holder: np.ndarray, estimate: np.ndarray,
                     pair_link: np.ndarray) -> None:
        """Many loose flows: hold each by the link of theirs with the smallest even share."""
        capacity = self.capacity
        even = capacity / np.maximum(np.bincount(pair_link, minlength=len(capacity)), 1)
        rows = self._slot_links[loose]
        shares = np.where(rows >= 0, even[np.maximum(rows, 0)], math.inf)
        pick = np.argmin(shares, axis=1)
        first = rows[np.arange(len(loose)), pick]
        best = shares[np.arange(len(loose)), pick]
        holder[loose] = np.where(self._slot_cap[loose] <= best, -1, first)
        np.minimum.at(estimate, first, best)

    def _repair(self, failing: list[int], holder: np.ndarray, rate: np.ndarray, estimate: np.ndarray) -> None:
        """At each failing link, find the level at which it fills with the flows it holds rising and the
        others at their current rates; a flow faster than that moves onto the failing link that fills
        first for it."""
        slot_of = self._slot
        holders, rates = holder.tolist(), rate.tolist()  # Python lists: read one item at a time below
        moves: dict[int, tuple[float, int]] = {}  # slot -> (fill level, link) of its best failing link
        for link in failing:
            own = 0
            others: list[tuple[float, int]] = []
            for flow in self.on_link[link]:
                slot = slot_of[flow]
                if holders[slot] == link:
                    own += 1
                else:
                    others.append((max(rates[slot], 0.0), slot))
            fill = _fill_level(self._bandwidth[link], [value for value, _slot in others], own)
            estimate[link] = fill
            for value, slot in others:
                if value > fill * (1 + _CHECK) and (slot not in moves or fill < moves[slot][0]):
                    moves[slot] = (fill, link)
        for slot, (_fill, link) in moves.items():
            holder[slot] = link

    def _full_refill(self, pair_slot: np.ndarray, pair_link: np.ndarray) -> np.ndarray:
        """Progressive filling of every flow, vectorised: every round, each link offers its remaining
        capacity split evenly over its unfrozen flows; the links with the smallest share are bottlenecks,
        and their flows are frozen at that share. Returns rates per slot."""
        slots = len(self._slot_flow)
        lengths = np.bincount(pair_slot, minlength=slots)
        links_used, local = np.unique(pair_link, return_inverse=True)
        # Per flow its (local) links, per link its flows, as slices: each round touches only what it freezes.
        flow_ptr = np.concatenate(([0], np.cumsum(lengths))).tolist()
        order = np.argsort(local, kind="stable")
        by_link = pair_slot[order]
        per_link = np.bincount(local, minlength=len(links_used))
        link_ptr = np.concatenate(([0], np.cumsum(per_link))).tolist()
        remaining = self.capacity[links_used].copy()
        counts = per_link.astype(float)
        caps = self._slot_cap
        rate = np.zeros(slots)
        unfrozen = lengths > 0
        left = int(unfrozen.sum())
        while left:
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(counts > 0, remaining / counts, np.inf)
            level = float(share.min())
            capped = np.flatnonzero(unfrozen & (caps <= level))
            if len(capped):  # flows wanting less than any fair share freeze at their cap first
                level = float(caps[capped].min())
                frozen = capped[caps[capped] <= level * (1 + _TIE)]
            else:
                bottlenecks = np.flatnonzero(share <= level * (1 + _TIE))
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
        return rate
