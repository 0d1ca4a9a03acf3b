"""Progressive filling of one connected component of flows, compiled with numba.

All flows rise together from 0; a link whose remaining capacity, split over its rising flows, is the
lowest share fills: its rising flows freeze at that share; a flow's cap (the most it wants) acts as a
private link. What is left is max-min fair and unique. Only the flows connected to the changed links
(through links they share, transitively) can move, so only that component is refilled; the rest keep
their rates exactly.

Why compiled: a change touches a few hundred to tens of thousands of (flow, link) pairs, and doing
that in Python costs about 1 us a pair (numpy helps only when each step does much work at once,
which progressive filling does not). Compiled, a pair costs a few nanoseconds, so a whole refill is
cheaper than the incremental Python passes this replaced (see docs/network.md). The first call compiles
(a few seconds); numba caches the result beside this file (or in the user's cache when that is not
writable), so later runs load it in well under a second.

The functions run as plain Python too (`refill.py_func`), which the tests use to check the logic.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _sift_down(key: np.ndarray, item: np.ndarray, size: int, at: int) -> None:
    """Restore the min-heap below position `at` (keys, with their items alongside)."""
    while True:
        child = 2 * at + 1
        if child >= size:
            return
        if child + 1 < size and key[child + 1] < key[child]:
            child += 1
        if key[child] >= key[at]:
            return
        key[at], key[child] = key[child], key[at]
        item[at], item[child] = item[child], item[at]
        at = child


@njit(cache=True)
def _freeze(slot: int, level: float, new: np.ndarray, frozen: np.ndarray, slot_start: np.ndarray,
            pair_link: np.ndarray, remaining: np.ndarray, rising: np.ndarray) -> None:
    new[slot] = level
    frozen[slot] = True
    for pair in range(slot_start[slot], slot_start[slot + 1]):
        link = pair_link[pair]
        remaining[link] -= level
        rising[link] -= 1


@njit(cache=True)
def refill(pair_slot: np.ndarray, pair_link: np.ndarray, slot_cap: np.ndarray, capacity: np.ndarray,
           rate: np.ndarray, seeds: np.ndarray, tie: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Refill the component of the `seeds` links, in place in `rate` (per slot).

    `pair_slot`, `pair_link`: every (slot, link) of the flows present, sorted by slot. A new rate within
    `tie` (relative) of the old one keeps the old value. Returns the slots whose rate moved (a slot
    whose old rate is NaN, i.e. new, always moves), the load of every link, and how many flows the
    component holds.
    """
    slots = rate.shape[0]
    links = capacity.shape[0]
    pairs = pair_slot.shape[0]
    # Slot -> its pairs (they come sorted by slot); link -> the slots on it.
    slot_start = np.zeros(slots + 1, np.int64)
    for pair in range(pairs):
        slot_start[pair_slot[pair] + 1] += 1
    for slot in range(slots):
        slot_start[slot + 1] += slot_start[slot]
    link_start = np.zeros(links + 1, np.int64)
    for pair in range(pairs):
        link_start[pair_link[pair] + 1] += 1
    for link in range(links):
        link_start[link + 1] += link_start[link]
    place = link_start[:links].copy()
    link_slots = np.empty(pairs, np.int64)
    for pair in range(pairs):
        link = pair_link[pair]
        link_slots[place[link]] = pair_slot[pair]
        place[link] += 1
    # The component: breadth-first from the seeds, link -> its flows -> their links.
    reached = np.zeros(links, np.bool_)
    met = np.zeros(slots, np.bool_)
    part_links = np.empty(links, np.int64)
    part_slots = np.empty(slots, np.int64)
    n_links = 0
    n_slots = 0
    for link in seeds:
        if not reached[link]:
            reached[link] = True
            part_links[n_links] = link
            n_links += 1
    head = 0
    while head < n_links:
        link = part_links[head]
        head += 1
        for at in range(link_start[link], link_start[link + 1]):
            slot = link_slots[at]
            if met[slot]:
                continue
            met[slot] = True
            part_slots[n_slots] = slot
            n_slots += 1
            for pair in range(slot_start[slot], slot_start[slot + 1]):
                other = pair_link[pair]
                if not reached[other]:
                    reached[other] = True
                    part_links[n_links] = other
                    n_links += 1
    # Progressive filling of the component. Each link has one heap entry, a lower bound of its share
    # (shares only rise as flows freeze below them); a popped entry is checked against the share now.
    remaining = capacity.copy()
    rising = np.zeros(links, np.int64)
    key = np.empty(n_links)
    item = np.empty(n_links, np.int64)
    size = 0
    for i in range(n_links):
        link = part_links[i]
        rising[link] = link_start[link + 1] - link_start[link]
        if rising[link] > 0:
            key[size] = remaining[link] / rising[link]
            item[size] = link
            size += 1
    for at in range(size // 2 - 1, -1, -1):
        _sift_down(key, item, size, at)
    capped_count = 0
    for i in range(n_slots):
        if slot_cap[part_slots[i]] < np.inf:
            capped_count += 1
    capped = np.empty(capped_count, np.int64)
    capped_count = 0
    for i in range(n_slots):
        if slot_cap[part_slots[i]] < np.inf:
            capped[capped_count] = part_slots[i]
            capped_count += 1
    capped = capped[np.argsort(slot_cap[capped], kind="mergesort")]
    new = np.zeros(slots)
    frozen = np.zeros(slots, np.bool_)
    left = n_slots
    next_capped = 0
    while left > 0:
        while next_capped < capped_count and frozen[capped[next_capped]]:
            next_capped += 1
        cap = slot_cap[capped[next_capped]] if next_capped < capped_count else np.inf
        share = np.inf
        link = -1
        while size > 0:
            link = item[0]
            if rising[link] == 0:  # every flow on it froze elsewhere: drop it
                size -= 1
                key[0], item[0] = key[size], item[size]
                _sift_down(key, item, size, 0)
                link = -1
                continue
            now = max(remaining[link] / rising[link], 0.0)
            if now > key[0]:  # its share rose since it was queued: queue it again
                key[0] = now
                _sift_down(key, item, size, 0)
                continue
            share = now
            break
        if next_capped < capped_count and cap <= share:
            _freeze(capped[next_capped], cap, new, frozen, slot_start, pair_link, remaining, rising)
            next_capped += 1
            left -= 1
            continue
        if link < 0:
            break  # cannot happen: every rising flow has a link still queued
        for at in range(link_start[link], link_start[link + 1]):
            slot = link_slots[at]
            if not frozen[slot]:
                _freeze(slot, share, new, frozen, slot_start, pair_link, remaining, rising)
                left -= 1
    moved = np.empty(n_slots, np.int64)
    n_moved = 0
    for i in range(n_slots):
        slot = part_slots[i]
        old = rate[slot]
        if not (new[slot] == old or abs(new[slot] - old) <= old * tie):  # noise is no change; NaN (new) moves
            rate[slot] = new[slot]
            moved[n_moved] = slot
            n_moved += 1
    load = np.zeros(links)
    for pair in range(pairs):
        load[pair_link[pair]] += rate[pair_slot[pair]]
    return moved[:n_moved], load, n_slots
