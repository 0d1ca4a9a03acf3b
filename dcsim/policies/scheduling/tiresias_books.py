"""Tiresias' ranking kept between passes (no promotion), so a pass costs about its decisions.

Without promotion a job's key (queue, arrival, id) changes only when a computing job's attained
service crosses a threshold: queued jobs keep theirs, and so do jobs still starting. The books hold
queued and running jobs in `ranked.KeyBlocks`, a heap of the (approximate) times computing jobs reach
their next threshold, and the running jobs not yet seen computing. Each pass first catches up with
what happened since the last one, all of it visible in the view: jobs that stopped running (their
count drops: completions, failures), jobs that entered the queue (arrivals, ends of suspensions,
`queued_since`), jobs that began computing, and jobs whose crossing time has come (their queue is
then recomputed from the exact attained service, as the full pass does). After the walk it applies
its own decisions (the engine applies each or stops the run). Times near a crossing are decided with
the exact attained service the full pass reads, so the ranks, the decisions and the next-pass time
are the same floats as Tiresias.schedule's full pass, which tests/test_preemption_speed.py checks.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Sequence

from dcsim.policies.base import JobView, PreemptiveView
from dcsim.policies.scheduling.ranked import (
    FollowUp,
    Key,
    KeyBlocks,
    LiveView,
    cursors_for,
    follow_up,
    sync_books,
    walk,
)


class _Running:
    __slots__ = ("demand", "job", "key", "model", "stamp")

    def __init__(self, key: Key, model: str, demand: int, job: JobView, stamp: int) -> None:
        self.key, self.model, self.demand, self.job, self.stamp = key, model, demand, job, stamp


class TiresiasBooks:
    """Queued and running jobs ranked by (queue, arrival, id) for one engine's view."""

    def __init__(self, view: LiveView, thresholds: Sequence[float]) -> None:
        self.view = view
        self.thresholds = tuple(thresholds)
        self.last = len(self.thresholds)
        self._rebuild(view)

    def _rebuild(self, view: LiveView) -> None:
        self.queued = KeyBlocks()
        self.queued_keys: dict[int, Key] = {}
        self.queued_demands: dict[int, int] = {}
        self.running: dict[str, KeyBlocks] = {m: KeyBlocks() for m in view.free}
        self.known: dict[int, _Running] = {}
        self.held = dict.fromkeys(view.free, 0)
        self.crossings: list[tuple[float, int, int]] = []  # (about when attained reaches the next threshold, stamp, id)
        self.starting: dict[int, _Running] = {}  # running below the last queue, not yet seen computing
        self.stamp = 0
        self.follow: FollowUp | None = None  # left by a pass that preempted, for the next (ranked.FollowUp)
        self.mark = view.arrival_mark
        self.exit_mark = view.exit_mark
        computing = view.computing_ids()
        for job in view.running():
            model = job.accelerator
            assert model is not None
            self._add_running(job, self._key(view, job), model)
            if job.id in computing:
                self._seen_computing(view, job.id)
        for job in view.queued():
            self._add_queued(view, job)

    def _key(self, view: PreemptiveView, job: JobView) -> Key:
        return (bisect_right(self.thresholds, view.attained_service(job)), job.submit, job.id)

    # --- books ------------------------------------------------------------------------------------
    def _add_queued(self, view: PreemptiveView, job: JobView) -> None:
        if job.id in self.queued_keys:
            return
        key = self._key(view, job)
        self.queued_keys[job.id] = key
        self.queued.insert(key, job.demand, job)
        self.queued_demands[job.demand] = self.queued_demands.get(job.demand, 0) + 1

    def _remove_queued(self, job: JobView) -> Key:
        key = self.queued_keys.pop(job.id)
        self.queued.remove(key, job.demand)
        left = self.queued_demands[job.demand] - 1
        if left:
            self.queued_demands[job.demand] = left
        else:
            del self.queued_demands[job.demand]
        return key

    def _add_running(self, job: JobView, key: Key, model: str) -> None:
        self.stamp += 1
        record = _Running(key, model, job.demand, job, self.stamp)
        self.known[job.id] = record
        self.running[model].insert(key, job.demand, job)
        self.held[model] += job.demand
        if key[0] < self.last:
            self.starting[job.id] = record

    def _remove_running(self, job_id: int) -> None:
        record = self.known.pop(job_id)
        self.running[record.model].remove(record.key, record.demand)
        self.held[record.model] -= record.demand
        self.starting.pop(job_id, None)

    def _seen_computing(self, view: PreemptiveView, job_id: int) -> None:
        record = self.starting.pop(job_id, None)
        if record is not None:
            self._push_crossing(view, record, view.attained_service(record.job))

    def _push_crossing(self, view: PreemptiveView, record: _Running, attained: float) -> None:
        queue = record.key[0]
        if queue < self.last:
            when = view.now + (self.thresholds[queue] - attained) / record.demand
            heapq.heappush(self.crossings, (when, record.stamp, record.job.id))

    def _valid(self, entry: tuple[float, int, int]) -> _Running | None:
        record = self.known.get(entry[2])
        return record if record is not None and record.stamp == entry[1] else None

    # --- a pass -----------------------------------------------------------------------------------
    def catch_up(self, view: LiveView) -> bool:
        """Bring the books up to the view: exits, queue entries, compute starts, threshold crossings.
        False: they were rebuilt from the view instead."""
        if not sync_books(self, view):
            return False
        if self.starting:
            computing = view.computing_ids()
            for job_id in [j for j in self.starting if j in computing]:
                self._seen_computing(view, job_id)
        heap = self.crossings
        if heap:
            now = view.now
            limit = now + 1e-8 * (1.0 + abs(now))
            later: list[tuple[Key, _Running, float]] = []
            while heap and heap[0][0] <= limit:
                record = self._valid(heapq.heappop(heap))
                if record is None:
                    continue
                attained = view.attained_service(record.job)
                queue = bisect_right(self.thresholds, attained)
                if queue != record.key[0]:
                    self.running[record.model].remove(record.key, record.demand)
                    record.key = (queue, *record.key[1:])
                    self.running[record.model].insert(record.key, record.demand, record.job)
                later.append((record.key, record, attained))
            for _, record, attained in later:
                self._push_crossing(view, record, attained)
        return True

    def follow_up(self, view: LiveView) -> list[tuple[JobView, str]] | None:
        """The starts of this pass if it is the follow-up of the last one (ranked.FollowUp), else None;
        call before catch_up."""
        follow, self.follow = self.follow, None
        return follow.starts(view) if follow is not None else None

    def wake(self, view: PreemptiveView) -> float:
        """Seconds until the next running job below the last queue crosses a threshold (as the full pass)."""
        thresholds = self.thresholds
        wake = math.inf
        for record in self.starting.values():
            attained = view.attained_service(record.job)
            wake = min(wake, (thresholds[record.key[0]] - attained) / record.demand)
        heap = self.crossings
        while heap and self._valid(heap[0]) is None:
            heapq.heappop(heap)
        if heap:
            # Every entry within 1e-8 of the first, read in place: where an entry is later than that,
            # so are all below it in the heap. (The same set as popping them, and the heap unchanged.)
            limit = heap[0][0] + 1e-8 * (1.0 + abs(view.now))
            size = len(heap)
            stack = [0]
            while stack:
                i = stack.pop()
                entry = heap[i]
                if entry[0] > limit:
                    continue
                near_record = self._valid(entry)
                if near_record is not None:
                    attained = view.attained_service(near_record.job)
                    wake = min(wake, (thresholds[near_record.key[0]] - attained) / near_record.demand)
                child = 2 * i + 1
                if child < size:
                    stack.append(child)
                    if child + 1 < size:
                        stack.append(child + 1)
        return wake

    def plan(self, view: LiveView, follow: list[tuple[JobView, str]] | None = None,
             ) -> tuple[list[JobView], list[tuple[JobView, str]]]:
        """plan_jobs(view, jobs in Tiresias order), from the books; the books then apply the decisions.
        `follow`: the starts follow_up found (the walk is not needed)."""
        if follow is not None:
            preempted: list[JobView] = []
            starts = follow
        else:
            free, releasing, held = view.free, view.releasing, self.held
            budget = {m: free[m] + releasing[m] + held[m] for m in free}
            smallest = min(self.queued_demands) if self.queued_demands else math.inf
            waiting: list[tuple[JobView, str]] = []
            mark, exit_mark = self.mark, self.exit_mark
            preempt, starts = walk(self.queued, cursors_for(self.running, budget), free,
                                   view.candidate_accelerators, smallest, waiting)
            preempted = [job for _, job in preempt]
            if preempt:
                self.follow = follow_up(view, preempt, starts, waiting, mark, exit_mark)
        for job in preempted:
            self._remove_running(job.id)
        for job, model in starts:
            self._add_running(job, self._remove_queued(job), model)
        return preempted, starts
