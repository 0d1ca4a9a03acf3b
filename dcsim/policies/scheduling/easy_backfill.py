"""EASY backfilling (Lifka 1995): FIFO with one reservation for the blocked head job.

Later jobs may jump ahead when, by the user's runtime estimates, they do not delay the head's
reservation: they end before the reservation starts, or use only accelerators the head will not need.
`max_scan` bounds how many queued jobs one pass examines for backfilling, as production schedulers
do (Slurm's bf_max_job_test); it keeps a pass cheap when the queue is long.
"""

from __future__ import annotations

from dcsim.policies.base import (
    PolicyBase,
    QueuedJobView,
    SchedulerView,
    StartJob,
    first_fit_accelerator,
)
from dcsim.policies.registry import register


@register("scheduler", "easy_backfill")
class EasyBackfill(PolicyBase):
    """FIFO plus backfilling of jobs that do not delay the first blocked job (EASY)."""

    def __init__(self, *, max_scan: int = 1000) -> None:
        if max_scan < 1:
            raise ValueError(f"max_scan must be >= 1, got {max_scan}")
        self.max_scan = max_scan

    def schedule(self, view: SchedulerView) -> list[StartJob]:
        free = dict(view.free)
        starts: list[StartJob] = []
        queue = view.queued()
        head: QueuedJobView | None = None
        for job in queue:
            accelerator = first_fit_accelerator(view, job, free)
            if accelerator is None:
                head = job
                break
            free[accelerator] -= job.demand
            starts.append(StartJob(job.id, accelerator))
        if head is None:
            return starts
        reserved, shadow, extra = self._reservation(view, head, free)
        scanned = 0
        for job in queue:  # continues after the head
            if scanned >= self.max_scan or not any(free.values()):
                break
            scanned += 1
            for accelerator in view.candidate_accelerators(job):
                if free[accelerator] < job.demand:
                    continue
                if accelerator != reserved:
                    ok = True
                elif view.now + job.estimate / view.relative_speed(job, accelerator) <= shadow:
                    ok = True
                elif job.demand <= extra:
                    extra -= job.demand
                    ok = True
                else:
                    ok = False
                if ok:
                    free[accelerator] -= job.demand
                    starts.append(StartJob(job.id, accelerator))
                    break
        return starts

    @staticmethod
    def _reservation(view: SchedulerView, head: QueuedJobView, free: dict[str, int]) -> tuple[str | None, float, int]:
        """Earliest (accelerator, shadow time, extra accelerators) at which the head job can start."""
        best: tuple[str | None, float, int] = (None, float("inf"), 0)
        for accelerator in view.candidate_accelerators(head):
            available = free[accelerator]
            for end, held in view.running_by_estimated_end(accelerator):
                available += held
                if available >= head.demand:
                    shadow = max(end, view.now)
                    if shadow < best[1]:
                        best = (accelerator, shadow, available - head.demand)
                    break
        return best
