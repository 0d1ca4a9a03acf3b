"""EASY backfilling (Lifka 1995): FIFO with one reservation for the blocked head job.

Later jobs may jump ahead when, by the user's runtime estimates, they do not delay the head's
reservation: they end before the reservation starts, or use only accelerators the head will not need.
`max_scan` bounds how many queued jobs one pass examines for backfilling, as production schedulers
do (Slurm's bf_max_job_test); it keeps a pass cheap when the queue is long.

A pass after arrivals only (no job started or ended since the last pass), while the clock has not
passed the last shadow time, cannot start any job the last pass examined: free counts and the
reservation are unchanged and time has only moved on, which makes "ends before the shadow time"
harder. Such a pass examines only the new arrivals. Once the clock passes the shadow time, running
jobs that overran their estimates count as ending now, which can move the reservation and free
more accelerators for backfilling, so the pass rescans. This memo is an optimisation; the decisions
are the same as a full rescan's.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from dcsim.policies.base import (
    PolicyBase,
    QueuedJobView,
    SchedulerView,
    StartJob,
    first_fit_accelerator,
)
from dcsim.policies.registry import register


@dataclass(frozen=True, slots=True)
class _Memo:
    version: int
    mark: int
    reserved: str | None
    shadow: float
    extra: int
    scanned: int
    exhausted: bool


@register("scheduler", "easy_backfill")
class EasyBackfill(PolicyBase):
    """FIFO plus backfilling of jobs that do not delay the first blocked job (EASY)."""

    def __init__(self, *, max_scan: int = 1000) -> None:
        if max_scan < 1:
            raise ValueError(f"max_scan must be >= 1, got {max_scan}")
        self.max_scan = max_scan
        self._memo: _Memo | None = None
        # Estimated runtime of a queued job per accelerator model: constant while it waits, and looked
        # up by the backfill scan for nearly every job it examines.
        self._runtimes: dict[str, dict[int, float]] = {}

    def schedule(self, view: SchedulerView) -> list[StartJob]:
        memo = self._memo
        if memo is not None and memo.version == view.allocation_version and view.now <= memo.shadow:
            if memo.exhausted:
                return []  # the last scan stopped for want of free accelerators or at max_scan
            return self._backfill(view, view.queued_since(memo.mark), dict(view.free), memo.reserved,
                                  memo.shadow, memo.extra, memo.scanned, [])
        free = dict(view.free)
        starts: list[StartJob] = []
        queue = view.queued()
        head: QueuedJobView | None = None
        started_ends: dict[str, list[tuple[float, int]]] = {}  # jobs this pass starts: they hold accelerators too
        for job in queue:
            accelerator = first_fit_accelerator(view, job, free)
            if accelerator is None:
                head = job
                break
            free[accelerator] -= job.demand
            starts.append(StartJob(job.id, accelerator))
            end = view.now + view.estimated_runtime(job, accelerator)
            started_ends.setdefault(accelerator, []).append((end, job.demand))
        if head is None:
            self._memo = None
            return starts
        reserved, shadow, extra = self._reservation(view, head, free, started_ends)
        return self._backfill(view, queue, free, reserved, shadow, extra, 0, starts)

    def _backfill(self, view: SchedulerView, queue: Iterator[QueuedJobView], free: dict[str, int],
                  reserved: str | None, shadow: float, extra: int, scanned: int,
                  starts: list[StartJob]) -> list[StartJob]:
        mark = view.arrival_mark
        # The backfill scan is the hot loop of long-queue runs: keep lookups local.
        now = view.now
        candidates = view.candidate_accelerators
        known = self._runtimes.setdefault(reserved, {}) if reserved is not None else {}
        free_total = sum(free.values())
        exhausted = False
        for job in queue:  # continues after the head
            if scanned >= self.max_scan or free_total == 0:
                exhausted = True
                break
            scanned += 1
            demand = job.demand
            for accelerator in candidates(job):
                if free[accelerator] < demand:
                    continue
                if accelerator == reserved:
                    runtime = known.get(job.id)
                    if runtime is None:
                        runtime = known[job.id] = view.estimated_runtime(job, accelerator)
                    if now + runtime > shadow:
                        if demand > extra:
                            continue
                        extra -= demand  # runs past the shadow time on accelerators the head will not need
                free[accelerator] -= demand
                free_total -= demand
                starts.append(StartJob(job.id, accelerator))
                break
        for start in starts:  # a started job's runtime is never looked up again
            for runtimes in self._runtimes.values():
                runtimes.pop(start.job_id, None)
        # Remember the scan only if it started nothing: then the allocation stays as it was seen.
        self._memo = None if starts else _Memo(view.allocation_version, mark, reserved, shadow, extra,
                                                scanned, exhausted)
        return starts

    @staticmethod
    def _reservation(
        view: SchedulerView, head: QueuedJobView, free: dict[str, int],
        started_ends: dict[str, list[tuple[float, int]]],
    ) -> tuple[str | None, float, int]:
        """Earliest (accelerator, shadow time, extra accelerators) at which the head job can start.

        Walks running jobs and the jobs this pass starts, by estimated end, until enough are freed.
        """
        best: tuple[str | None, float, int] = (None, float("inf"), 0)
        for accelerator in view.candidate_accelerators(head):
            available = free[accelerator]
            ends = heapq.merge(view.running_by_estimated_end(accelerator), sorted(started_ends.get(accelerator, ())))
            found: float | None = None
            for end, held in ends:
                if found is not None and max(end, view.now) > found:
                    break
                available += held  # every job ending at the shadow time frees its accelerators for the extra
                if found is None and available >= head.demand:
                    found = max(end, view.now)  # estimated ends already past count as now
            if found is not None:
                shadow = found
                if shadow < best[1]:
                    best = (accelerator, shadow, available - head.demand)
        return best
