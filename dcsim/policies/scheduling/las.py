"""Least attained service first (LAS, also foreground-background), preemptive, optionally in rounds.

Attained service is the seconds a job has computed (accelerator-seconds over its accelerators), read
from the engine's lifecycle books; jobs with the least go first, ties by arrival. With `round` = 0
the policy decides on arrivals and completions only, so a started job runs until one of those; with a
round length (360 s in Gavel's simulator) it also re-decides at every multiple of it, time-slicing
jobs of equal service. As the round shrinks LAS approaches the M/G/1 foreground-background discipline
(Kleinrock, Queueing Systems vol. 2, 1976; Nuyens and Wierman, "The Foreground-Background queue: a
survey", 2008), whose mean response time tests/test_preemption_theory.py checks. For an
accelerator-seconds (two-dimensional) variant in priority queues see `tiresias`.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter

from dcsim.policies.base import Decision, NextPass, PolicyBase, PreemptiveView
from dcsim.policies.registry import register
from dcsim.policies.scheduling.preemptive import all_jobs, check_round, plan, round_boundary


@register("scheduler", "las")
class LeastAttainedService(PolicyBase):
    """Preemptive least attained service first; `round` > 0 re-decides every round (seconds)."""

    preemptive = True

    def __init__(self, *, round: float = 0.0) -> None:
        check_round(round)
        self.round = round

    def schedule(self, view: PreemptiveView) -> Sequence[Decision]:
        attained = view.attained_service
        keyed = [((attained(job) / job.demand, job.submit, job.id), job) for job in all_jobs(view)]
        keyed.sort(key=itemgetter(0))
        jobs = [job for _, job in keyed]
        decisions = plan(view, jobs)
        if self.round > 0 and any(True for _ in view.queued()):  # rounds matter only while jobs wait
            decisions.append(NextPass(round_boundary(view.now, self.round)))
        return decisions
