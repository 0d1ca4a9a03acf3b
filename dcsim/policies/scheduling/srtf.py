"""Preemptive shortest remaining (estimated) time first.

SRPT, shown optimal for mean response time on one server by Schrage (1968); the mean response time
of M/G/1 under SRPT is Schrage and Miller (1966), which tests/test_preemption_theory.py checks. For
gang jobs on a cluster it is the greedy multi-server version: jobs by estimated work left (user
estimate minus work done, in reference seconds), ties by arrival; running jobs that no longer fit
below shorter ones are preempted. Decisions are taken on arrivals and completions only (the work left
of a running job only shrinks, so it cannot lose its place between them).
"""

from __future__ import annotations

from collections.abc import Sequence

from dcsim.policies.base import Decision, PolicyBase, PreemptiveView
from dcsim.policies.registry import register
from dcsim.policies.scheduling.preemptive import all_jobs, plan


@register("scheduler", "srtf")
class ShortestRemainingTimeFirst(PolicyBase):
    """Preemptive shortest remaining estimated time first (SRPT; Schrage 1968)."""

    preemptive = True

    def __init__(self) -> None:
        pass

    def schedule(self, view: PreemptiveView) -> Sequence[Decision]:
        remaining = view.remaining_estimate
        jobs = sorted(all_jobs(view), key=lambda job: (remaining(job), job.submit, job.id))
        return plan(view, jobs)
