"""First come, first served: start jobs in arrival order, stop at the first that does not fit."""

from __future__ import annotations

from dcsim.policies.base import PolicyBase, SchedulerView, StartJob, first_fit_accelerator
from dcsim.policies.registry import register


@register("scheduler", "fifo")
class Fifo(PolicyBase):
    """Strict arrival order; a job that does not fit blocks the ones behind it."""

    def __init__(self) -> None:
        pass

    def schedule(self, view: SchedulerView) -> list[StartJob]:
        return start_in_order(view, view.queued())


def start_in_order(view: SchedulerView, ordered: object) -> list[StartJob]:
    """Start jobs from `ordered` while each fits; stop at the first that does not."""
    free = dict(view.free)
    starts: list[StartJob] = []
    for job in ordered:  # type: ignore[attr-defined]
        accelerator = first_fit_accelerator(view, job, free)
        if accelerator is None:
            break
        free[accelerator] -= job.demand
        starts.append(StartJob(job.id, accelerator))
    return starts
