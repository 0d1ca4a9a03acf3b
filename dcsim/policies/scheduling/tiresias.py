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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dcsim.policies.base import Decision, JobView, NextPass, PolicyBase, PreemptiveView
from dcsim.policies.registry import register
from dcsim.policies.scheduling.preemptive import all_jobs, plan


@register("scheduler", "tiresias")
class Tiresias(PolicyBase):
    """Discretised 2D-LAS in priority queues by attained accelerator-seconds, FIFO within a queue (NSDI'19)."""

    preemptive = True

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

    def _queue(self, view: PreemptiveView, job: JobView, attained: float, running: bool) -> int:
        if self.promote_knob > 0 and not running and attained > 0:
            waited = view.now - view.waiting_since(job)
            if waited >= self.promote_knob * attained / job.demand:
                return 0
        return sum(1 for t in self.thresholds if attained >= t)

    def schedule(self, view: PreemptiveView) -> Sequence[Decision]:
        keyed = []
        running = {job.id for job in view.running()}
        wake = math.inf
        for job in all_jobs(view):
            attained = view.attained_service(job)
            queue = self._queue(view, job, attained, job.id in running)
            keyed.append(((queue, job.submit, job.id), job))
            if job.id in running:
                above = [t for t in self.thresholds if t > attained]
                if above:  # computing (or about to): when it crosses the next threshold
                    wake = min(wake, (above[0] - attained) / job.demand)
            elif self.promote_knob > 0 and queue > 0:
                due = view.waiting_since(job) + self.promote_knob * attained / job.demand
                wake = min(wake, due - view.now)
        keyed.sort(key=lambda pair: pair[0])
        decisions = plan(view, [job for _, job in keyed])
        if wake < math.inf and any(True for _ in view.queued()):  # only while jobs wait
            decisions.append(NextPass(max(wake, 1e-6)))
        return decisions
