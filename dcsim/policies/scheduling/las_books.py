"""LAS' ranking kept between passes, so a pass costs about its decisions rather than the jobs present.

LAS ranks by (attained / demand, arrival, id). A queued job's key does not change while it waits.
A computing job's attained / demand grows at one per second, so computing jobs keep their order
among themselves: they are held per accelerator model by (c, arrival, id) with c = key - now, taken
when the books first see them computing. The full pass compares the floats attained / demand
computed now, and two jobs whose c differ by a few ulps may come out in either order, so the walk
(`_LasCursor`) trusts c only where it is far from the comparison at hand (more than `eps`, about
1e-8 relative, thousands of times the rounding error): near a queued job's key, and among running
jobs whose c are that close (a "cluster"), it computes the exact keys the full pass would and sorts
by them; a block of running jobs is skipped whole only where it does not split a cluster. Passes
while a started job has not begun computing (start-up, restore) take the full pass (its key is
then fixed but not yet of the computing kind); the books still follow its decisions.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate

from dcsim.policies.base import JobView, PreemptiveView
from dcsim.policies.scheduling.ranked import (
    Cursor,
    FollowUp,
    Key,
    KeyBlocks,
    LiveView,
    follow_up,
    sync_books,
    walk,
)

Exact = Callable[[JobView], float]


class _LasCursor:
    """Walks one model's computing jobs in the order of their exact keys now (see the module docstring)."""

    __slots__ = ("before", "block", "books", "buffer", "eps", "exact", "left", "now", "pos")

    def __init__(self, books: KeyBlocks, left: int, now: float, eps: float, exact: Exact) -> None:
        self.books = books
        self.left = left
        self.now = now
        self.eps = eps
        self.exact = exact
        self.block = 0
        self.pos = 0
        self.buffer: list[tuple[Key, int, JobView]] = []  # a cluster by exact key, last first
        self.before = list(accumulate(books.sums, initial=0))  # demand of the blocks before each block

    def _demand_before(self, b: int, i: int) -> int:
        if not i:  # (always the case at the end, b == the number of blocks)
            return self.before[b]
        return self.before[b] + sum(self.books.demands[b][:i])

    def _furthest_fitting(self, b: int, pos: int, target: int) -> tuple[int, int]:
        """The furthest position whose demand before it is at most `target` (from (b, pos) on)."""
        books = self.books
        last = bisect_right(self.before, target, b + 1) - 1
        if last >= len(books.blocks):
            return len(books.blocks), 0
        i = pos if last == b else 0
        total = self._demand_before(last, i)
        demands = books.demands[last]
        while i < len(demands) and total + demands[i] <= target:
            total += demands[i]
            i += 1
        return (last + 1, 0) if i == len(demands) else (last, i)

    def advance(self, bound: Key, preempt: list[tuple[Key, JobView]]) -> None:
        books = self.books
        blocks = books.blocks
        b, buffer = self.block, self.buffer
        if not buffer and b < len(blocks) and blocks[b][self.pos][0][0] > bound[0] - self.now + self.eps:
            return  # the next running job surely ranks below the bound: nothing to decide (as the loop finds)
        lasts, demands, before = books.lasts, books.demands, self.before
        pos, left = self.pos, self.left
        eps, now = self.eps, self.now
        gap = 2 * eps
        offset = bound[0] - now  # a c below offset - eps ranks surely above the bound, above offset + eps surely below
        while True:
            while buffer:
                key, demand, job = buffer[-1]
                if not key < bound:
                    self.block, self.pos, self.left = b, pos, left
                    return
                buffer.pop()
                if left >= demand:
                    left -= demand
                else:
                    preempt.append((key, job))
            count = len(blocks)
            if b >= count:
                break
            # Surely above the bound: up to (b2, e2); keep all of them that fit, whatever their order.
            if offset == math.inf:
                b2, e2 = count, 0
            else:
                b2 = bisect_left(lasts, (offset - eps,), b)
                e2 = 0 if b2 == count else bisect_left(blocks[b2], ((offset - eps,),), pos if b2 == b else 0)
            # (the demands before positions, inlined: the hot loop of LAS replays)
            base = before[b] + sum(demands[b][:pos]) if pos else before[b]
            upto = before[b2] + sum(demands[b2][:e2]) if e2 else before[b2]
            if upto - base > left:
                b2, e2 = min((b2, e2), self._furthest_fitting(b, pos, base + left))
            while b2 > b or (b2 == b and e2 > pos):
                at = blocks[b2][e2][0][0] if b2 < count else math.inf
                if at - (blocks[b2][e2 - 1][0][0] if e2 > 0 else blocks[b2 - 1][-1][0][0]) > gap:
                    break
                if e2 > 0:  # do not split a cluster of near-equal keys
                    e2 -= 1
                else:
                    b2, e2 = b2 - 1, len(blocks[b2 - 1]) - 1
            if b2 > b or (b2 == b and e2 > pos):
                left -= (before[b2] + sum(demands[b2][:e2]) if e2 else before[b2]) - base
                b, pos = b2, e2
                # A second look from here would end here too (the same bisects, the same budget target,
                # the same cluster): go on with what lies here.
                if b >= count:
                    break
            if blocks[b][pos][0][0] > offset + eps:  # this one and all after it rank below the bound
                break
            cluster: list[tuple[Key, int, JobView]] = []
            previous = -math.inf
            exact = self.exact
            while b < count:
                ckey, demand, job = blocks[b][pos]
                if ckey[0] - previous > gap and cluster:
                    break
                previous = ckey[0]
                cluster.append(((exact(job), ckey[1], ckey[2]), demand, job))
                pos += 1
                if pos == len(blocks[b]):
                    b, pos = b + 1, 0
            cluster.sort(reverse=True)
            buffer.extend(cluster)
        self.block, self.pos, self.left = b, pos, left


class _Record:
    __slots__ = ("ckey", "demand", "job", "model")

    def __init__(self, model: str, demand: int, job: JobView) -> None:
        self.model, self.demand, self.job = model, demand, job
        self.ckey: Key | None = None  # (c, arrival, id) once seen computing


class LasBooks:
    """Queued jobs by their (fixed) key and computing jobs by c, per model, for one engine's view."""

    def __init__(self, view: LiveView) -> None:
        self.view = view
        self._rebuild(view)

    @staticmethod
    def _exact(view: PreemptiveView) -> Exact:
        attained = view.attained_service
        return lambda job: attained(job) / job.demand

    def _rebuild(self, view: LiveView) -> None:
        self.queued = KeyBlocks()
        self.queued_keys: dict[int, Key] = {}
        self.queued_demands: dict[int, int] = {}
        self.computing: dict[str, KeyBlocks] = {m: KeyBlocks() for m in view.free}
        self.known: dict[int, _Record] = {}
        self.starting: dict[int, _Record] = {}  # running, not yet seen computing
        self.held = dict.fromkeys(view.free, 0)
        self.follow: FollowUp | None = None  # left by a pass that preempted, for the next (ranked.FollowUp)
        self.mark = view.arrival_mark
        self.exit_mark = view.exit_mark
        for job in view.running():
            assert job.accelerator is not None
            self._add_running(job, job.accelerator)
        for job in view.queued():
            self._add_queued(view, job)
        self._see_computing(view)

    def _add_queued(self, view: PreemptiveView, job: JobView) -> None:
        if job.id in self.queued_keys:
            return
        key = (view.attained_service(job) / job.demand, job.submit, job.id)
        self.queued_keys[job.id] = key
        self.queued.insert(key, job.demand, job)
        self.queued_demands[job.demand] = self.queued_demands.get(job.demand, 0) + 1

    def _remove_queued(self, job: JobView) -> None:
        self.queued.remove(self.queued_keys.pop(job.id), job.demand)
        left = self.queued_demands[job.demand] - 1
        if left:
            self.queued_demands[job.demand] = left
        else:
            del self.queued_demands[job.demand]

    def _add_running(self, job: JobView, model: str) -> None:
        record = _Record(model, job.demand, job)
        self.known[job.id] = record
        self.starting[job.id] = record
        self.held[model] += job.demand

    def _remove_running(self, job_id: int) -> None:
        record = self.known.pop(job_id)
        self.held[record.model] -= record.demand
        if record.ckey is None:
            del self.starting[job_id]
        else:
            self.computing[record.model].remove(record.ckey, record.demand)

    def _see_computing(self, view: LiveView) -> None:
        if not self.starting:
            return
        computing = view.computing_ids()
        now = view.now
        for job_id in [j for j in self.starting if j in computing]:
            record = self.starting.pop(job_id)
            job = record.job
            record.ckey = (view.attained_service(job) / job.demand - now, job.submit, job.id)
            self.computing[record.model].insert(record.ckey, record.demand, job)

    def catch_up(self, view: LiveView) -> bool:
        """Bring the books up to the view: jobs that stopped, entered the queue or began computing.
        False: they were rebuilt from the view instead."""
        if not sync_books(self, view):
            return False
        self._see_computing(view)
        return True

    def follow_up(self, view: LiveView) -> list[tuple[JobView, str]] | None:
        """The starts of this pass if it is the follow-up of the last one (ranked.FollowUp), else None;
        call before catch_up."""
        follow, self.follow = self.follow, None
        return follow.starts(view) if follow is not None else None

    def plan(self, view: LiveView, follow: list[tuple[JobView, str]] | None = None,
             ) -> tuple[list[JobView], list[tuple[JobView, str]]] | None:
        """plan_jobs(view, jobs in LAS order) from the books, or None while a running job is still starting.
        `follow`: the starts follow_up found (the walk is not needed)."""
        if self.starting:
            return None
        if follow is not None:
            preempted: list[JobView] = []
            starts = follow
        else:
            free, releasing, held = view.free, view.releasing, self.held
            now = view.now
            eps = 4e-8 * (1.0 + abs(now))
            exact = self._exact(view)
            cursors: dict[str, Cursor] = {m: _LasCursor(self.computing[m], free[m] + releasing[m] + held[m], now,
                                                        eps, exact) for m in free}
            smallest = min(self.queued_demands) if self.queued_demands else math.inf
            waiting: list[tuple[JobView, str]] = []
            mark, exit_mark = self.mark, self.exit_mark
            preempt, starts = walk(self.queued, cursors, free, view.candidate_accelerators, smallest, waiting)
            preempted = [job for _, job in preempt]
            if preempt:
                self.follow = follow_up(view, preempt, starts, waiting, mark, exit_mark)
        self.apply(preempted, starts)
        return preempted, starts

    def apply(self, preempt: Sequence[JobView], starts: Sequence[tuple[JobView, str]]) -> None:
        """Follow the decisions of a pass (the engine applies each or stops the run)."""
        for job in preempt:
            self._remove_running(job.id)
        for job, model in starts:
            self._remove_queued(job)
            self._add_running(job, model)
