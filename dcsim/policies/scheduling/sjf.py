"""Shortest job first on the user's estimated work."""

from __future__ import annotations

from dcsim.policies.base import PolicyBase, SchedulerView, StartJob
from dcsim.policies.registry import register
from dcsim.policies.scheduling.fifo import start_in_order


@register("scheduler", "sjf")
class ShortestJobFirst(PolicyBase):
    """Start the job with the least estimated work first; stop at the first that does not fit."""

    def __init__(self) -> None:
        pass

    def schedule(self, view: SchedulerView) -> list[StartJob]:
        return start_in_order(view, view.queued_by_estimate())
