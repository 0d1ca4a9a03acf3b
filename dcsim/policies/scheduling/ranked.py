"""The greedy walk of preemptive.plan over books kept between passes, for long replays.

`plan` ranks every present job on every pass: O(jobs present) per pass, which dominates replays of
tens of thousands of jobs. Here the jobs stay ranked between passes: queued jobs in one `KeyBlocks`
and running jobs in one per accelerator model, each a list of sorted blocks of (key, demand, job)
that carry their demand sums. `walk` gives the decisions plan would give for the same order:
- it steps through queued jobs in key order and stops once no queued job can fit anywhere;
- a queued job looking at model m first brings m's running jobs ranked above it up to date, a whole
  block at once where the block fits in what is left of m's budget (then all its jobs keep their
  accelerators, whatever their order inside it), job by job otherwise;
- running jobs ranked below the last queued job it looked at are walked the same way at the end.
A running job's fate depends only on its own model's budget, so bringing each model up to date only
when a queued job looks at it (or at the end) gives the same fates as plan's single pass. Cost per
pass: blocks skipped + jobs whose fate is decided one by one (about the decisions and the queued jobs
that take a place), not the jobs present. Keys must be unique (they end with the job id) and totally
ordered; tests/test_preemption_speed.py checks the walk against plan on random books.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from dcsim.policies.base import JobView

Key = tuple[Any, ...]
Entry = tuple[Key, int, JobView]
BLOCK = 32  # entries per block before it splits in two
LAST: Key = (float("inf"),)  # ranks below every key whose first item is a finite number


class KeyBlocks:
    """Entries sorted by key in blocks of at most 2 x BLOCK, each with its demand sum and last key."""

    __slots__ = ("blocks", "count", "lasts", "sums")

    def __init__(self) -> None:
        self.blocks: list[list[Entry]] = []
        self.sums: list[int] = []
        self.lasts: list[Key] = []
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def insert(self, key: Key, demand: int, job: JobView) -> None:
        blocks = self.blocks
        self.count += 1
        if not blocks:
            blocks.append([(key, demand, job)])
            self.sums.append(demand)
            self.lasts.append(key)
            return
        i = bisect_left(self.lasts, key)
        if i == len(blocks):
            i -= 1
        block = blocks[i]
        insort(block, (key, demand, job))
        self.sums[i] += demand
        self.lasts[i] = block[-1][0]
        if len(block) > 2 * BLOCK:
            head, tail = block[:BLOCK], block[BLOCK:]
            blocks[i:i + 1] = [head, tail]
            self.sums[i:i + 1] = [sum(e[1] for e in head), sum(e[1] for e in tail)]
            self.lasts[i:i + 1] = [head[-1][0], tail[-1][0]]

    def remove(self, key: Key, demand: int) -> None:
        i = bisect_left(self.lasts, key)
        block = self.blocks[i]
        j = bisect_left(block, (key,))
        if j == len(block) or block[j][0] != key:
            raise KeyError(key)
        del block[j]
        self.count -= 1
        if block:
            self.sums[i] -= demand
            self.lasts[i] = block[-1][0]
        else:
            del self.blocks[i], self.sums[i], self.lasts[i]

    def __iter__(self) -> Iterator[Entry]:
        for block in self.blocks:
            yield from block


class _Cursor:
    """Where the walk stands in one model's running jobs, and what is left of that model's budget."""

    __slots__ = ("block", "books", "left", "pos")

    def __init__(self, books: KeyBlocks, left: int) -> None:
        self.books = books
        self.block = 0
        self.pos = 0
        self.left = left

    def advance(self, bound: Key, preempt: list[tuple[Key, JobView]]) -> None:
        """Decide the running jobs ranked above `bound`: keep those that fit, preempt the others."""
        books = self.books
        blocks, sums, lasts = books.blocks, books.sums, books.lasts
        b, pos, left = self.block, self.pos, self.left
        while b < len(blocks):
            if pos == 0 and sums[b] <= left and lasts[b] < bound:
                left -= sums[b]
                b += 1
                continue
            block = blocks[b]
            while pos < len(block):
                key, demand, job = block[pos]
                if not key < bound:
                    self.block, self.pos, self.left = b, pos, left
                    return
                if left >= demand:
                    left -= demand
                else:
                    preempt.append((key, job))
                pos += 1
            b += 1
            pos = 0
        self.block, self.pos, self.left = b, pos, left


def walk(queued: KeyBlocks, running: Mapping[str, KeyBlocks], budget: Mapping[str, int], free: Mapping[str, int],
         candidates: Callable[[JobView], Sequence[str]], smallest_queued: float,
         ) -> tuple[list[tuple[Key, JobView]], list[tuple[JobView, str]]]:
    """The fates plan() would give: (running jobs to preempt in rank order, (queued job, model) to start now).

    `budget`: per model, free + releasing + held by running jobs; `smallest_queued`: the smallest demand
    of any queued job (the walk of the queue stops once no model has that much left)."""
    cursors = {m: _Cursor(running[m], budget[m]) if m in running else _Cursor(KeyBlocks(), budget[m])
               for m in budget}
    free_now = dict(free)
    preempt: list[tuple[Key, JobView]] = []
    starts: list[tuple[JobView, str]] = []
    every = list(cursors.values())
    if any(c.left >= smallest_queued for c in every):
        for key, demand, job in queued:
            for model in candidates(job):
                cursor = cursors[model]
                cursor.advance(key, preempt)
                if cursor.left >= demand:
                    cursor.left -= demand
                    if free_now[model] >= demand:
                        free_now[model] -= demand
                        starts.append((job, model))
                    break
            if all(c.left < smallest_queued for c in every):  # no queued job can take a place any more
                break
    for cursor in every:
        cursor.advance(LAST, preempt)
    if len(cursors) > 1:
        preempt.sort(key=lambda entry: entry[0])
    return preempt, starts
