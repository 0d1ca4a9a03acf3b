"""Least attained service first (LAS, also foreground-background), preemptive, optionally in rounds.

Attained service is the seconds a job has computed (accelerator-seconds over its accelerators), read
from the engine's lifecycle books; jobs with the least go first, ties by arrival. With `round` = 0
the policy decides on arrivals and completions only, so a started job runs until one of those; with a
round length (360 s in Gavel's simulator) it also re-decides at every multiple of it, time-slicing
jobs of equal service. As the round shrinks LAS approaches the M/G/1 foreground-background discipline
(Kleinrock, Queueing Systems vol. 2, 1976; Nuyens and Wierman, "The Foreground-Background queue: a
survey", 2008), whose mean response time tests/test_preemption_theory.py checks. For an
accelerator-seconds (two-dimensional) variant in priority queues see `tiresias`.

On the training engine's view the ranking is kept between passes (las_books.py) instead of rebuilt:
the same decisions at a cost per pass of about the decisions rather than the jobs present (full
Philly replays). `incremental = False` forces the full pass (tests compare the two).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import cast

from dcsim.policies.base import (
    Decision,
    JobView,
    PlannedPass,
    PolicyBase,
    PreemptiveView,
    decisions_of,
    trusted_scheduler,
)
from dcsim.policies.registry import register
from dcsim.policies.scheduling.las_books import LasBooks
from dcsim.policies.scheduling.preemptive import all_jobs, check_round, plan_jobs, round_boundary
from dcsim.policies.scheduling.ranked import LiveView, has_live_ids


@register("scheduler", "las")
@trusted_scheduler
class LeastAttainedService(PolicyBase):
    """Preemptive least attained service first; `round` > 0 re-decides every round (seconds)."""

    preemptive = True
    incremental = True  # keep the ranking between passes where it can (see the module docstring)

    def __init__(self, *, round: float = 0.0) -> None:
        check_round(round)
        self.round = round

    def schedule(self, view: PreemptiveView) -> Sequence[Decision]:
        return decisions_of(self.plan_pass(view))

    def plan_pass(self, view: PreemptiveView) -> PlannedPass:
        """The pass as jobs (policies.base.PlannedPass): what `schedule` returns, before it is Decisions."""
        books: LasBooks | None = self.__dict__.get("_books")
        follow = None
        if books is not None and books.view is view and self.incremental:  # the common case, cheaply
            follow = books.follow_up(books.view)
            if not books.catch_up(books.view):
                follow = None
        elif self.incremental and has_live_ids(view):  # a first pass, or another engine's view
            books = self._books = LasBooks(cast(LiveView, view))
        else:
            books = None
        waiting = len(books.queued) > 0 if books is not None else any(True for _ in view.queued())
        planned = books.plan(books.view, follow) if books is not None else None
        if planned is None:
            planned = self._full_pass(view)
            if books is not None:
                books.apply(*planned)
        # Rounds matter only while jobs wait.
        after = round_boundary(view.now, self.round) if self.round > 0 and waiting else None
        return planned[0], planned[1], after

    @staticmethod
    def _full_pass(view: PreemptiveView) -> tuple[list[JobView], list[tuple[JobView, str]]]:
        attained = view.attained_service
        keyed = [((attained(job) / job.demand, job.submit, job.id), job) for job in all_jobs(view)]
        keyed.sort(key=itemgetter(0))
        return plan_jobs(view, [job for _, job in keyed])
