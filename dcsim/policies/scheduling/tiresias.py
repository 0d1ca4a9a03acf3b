"""Tiresias: discretised two-dimensional least attained service (Gu et al., NSDI'19).

A job's attained service is accelerator-seconds (accelerators x seconds computed: the two
dimensions). `thresholds` split it into `queues` priority queues: a job in queue k has attained at
least thresholds[k-1] and less than thresholds[k]; queue 0 goes first, FIFO by arrival inside a
queue, and a running job that no longer fits below higher queues is preempted. Discretising (rather
than pure LAS) keeps jobs of similar service from preempting each other back and forth; the paper
finds two queues enough. Starvation: a queued job that has waited `promote_knob` times its executed
time (attained accelerator-seconds over accelerators) since it last entered the queue is promoted to
queue 0 (0 disables promotion). The policy asks for a pass when a running job crosses a threshold or
a queued job reaches promotion, so demotion and promotion take effect on time, without rounds.

Without promotion, on the training engine's view, the ranking is kept between passes
(tiresias_books.py) instead of rebuilt: the same decisions, at a cost per pass of about the
decisions rather than the jobs present (full Philly replays). `incremental = False` forces the full
pass everywhere (tests compare the two).
"""

from __future__ import annotations

import math
from bisect import bisect_right
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
from dcsim.policies.scheduling.preemptive import plan_jobs
from dcsim.policies.scheduling.ranked import LiveView, has_live_ids
from dcsim.policies.scheduling.tiresias_books import TiresiasBooks


@register("scheduler", "tiresias")
@trusted_scheduler
class Tiresias(PolicyBase):
    """Discretised 2D-LAS in priority queues by attained accelerator-seconds, FIFO within a queue (NSDI'19)."""

    preemptive = True
    incremental = True  # keep the ranking between passes where it can (see the module docstring)

    def __init__(self, *, queues: int = 2, thresholds: Sequence[float] = (3600.0,),
                 promote_knob: float = 0.0) -> None:
        if queues < 1:
            raise ValueError(f"queues must be >= 1, got {queues}")
        if len(thresholds) != queues - 1:
            raise ValueError(f"thresholds must have queues - 1 = {queues - 1} values, got {len(thresholds)}")
        if any(not 0 < t < math.inf for t in thresholds) or list(thresholds) != sorted(set(thresholds)):
            raise ValueError(f"thresholds must be increasing accelerator-seconds > 0, got {list(thresholds)}")
        if not 0 <= promote_knob < math.inf:
            raise ValueError(f"promote_knob must be >= 0, got {promote_knob}")
        self.queues = queues
        self.thresholds = thresholds
        self.promote_knob = promote_knob

    def schedule(self, view: PreemptiveView) -> Sequence[Decision]:
        return decisions_of(self.plan_pass(view))

    def plan_pass(self, view: PreemptiveView) -> PlannedPass:
        """The pass as jobs (policies.base.PlannedPass): what `schedule` returns, before it is Decisions."""
        books: TiresiasBooks | None = self.__dict__.get("_books")
        if books is not None and books.view is view and self.incremental and self.promote_knob == 0:
            # The view seen before: it has live ids (the common case, cheaply).
            follow = books.follow_up(books.view)
            if not books.catch_up(books.view):
                follow = None
            return self._pass_from_books(books, follow)
        if self.incremental and self.promote_knob == 0 and has_live_ids(view):
            return self._schedule_from_books(view)
        return self._schedule_full(view)

    def _schedule_from_books(self, view: PreemptiveView) -> PlannedPass:
        live = cast(LiveView, view)  # has_live_ids(view) checked
        books: TiresiasBooks | None = getattr(self, "_books", None)
        if books is None or books.view is not view:
            books = self._books = TiresiasBooks(live, self.thresholds)
        else:
            books.follow = None
            books.catch_up(live)  # (plan_pass takes this case itself)
        return self._pass_from_books(books)

    @staticmethod
    def _pass_from_books(books: TiresiasBooks, follow: list[tuple[JobView, str]] | None = None) -> PlannedPass:
        view = books.view
        wake = books.wake(view) if books.queued.count else math.inf
        preempt, starts = books.plan(view, follow)
        return preempt, starts, max(wake, 1e-6) if wake < math.inf else None

    def _schedule_full(self, view: PreemptiveView) -> PlannedPass:
        # The hot loop of long replays: one pass over present jobs, lookups kept local.
        thresholds, knob, now = self.thresholds, self.promote_knob, view.now
        attained_of, since = view.attained_service, view.waiting_since
        last = len(thresholds)
        keyed: list[tuple[tuple[int, float, int], JobView]] = []
        wake = math.inf
        for job in view.running():
            attained = attained_of(job)
            queue = bisect_right(thresholds, attained)
            keyed.append(((queue, job.submit, job.id), job))
            if queue < last:  # when it crosses the next threshold (if computing)
                wake = min(wake, (thresholds[queue] - attained) / job.demand)
        waiting = False
        for job in view.queued():
            waiting = True
            attained = attained_of(job)
            queue = bisect_right(thresholds, attained)
            if knob > 0 and queue > 0:
                due = since(job) + knob * attained / job.demand  # promotion to queue 0
                if now >= due:
                    queue = 0
                else:
                    wake = min(wake, due - now)
            keyed.append(((queue, job.submit, job.id), job))
        keyed.sort(key=itemgetter(0))
        preempt, starts = plan_jobs(view, [job for _, job in keyed])
        # Demotions and promotions matter only while jobs wait.
        return preempt, starts, max(wake, 1e-6) if wake < math.inf and waiting else None
