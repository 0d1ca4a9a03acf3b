"""Priority classes and guaranteed tenant quotas, preemptive (virtual clusters as in Philly and Helios).

Jobs of a higher priority level preempt those of a lower one. Within a level, each tenant is
guaranteed its quota of accelerators (scenario `tenancy.tenants.<name>.quota`, any model): jobs that
fit in their tenant's quota come first, jobs beyond it (borrowing idle accelerators) after, so a
tenant under its quota reclaims accelerators from tenants over theirs. Quota use is counted in order
of level, then running before queued, then arrival, so a tenant's running jobs keep its guarantee.
Among equals running jobs stay and queued ones go in arrival order: only a better standing preempts.
Sources: Jeon et al., "Analysis of Large-Scale Multi-Tenant GPU Clusters for DNN Training Workloads"
(ATC'19, Philly's virtual clusters); Hu et al., "Characterization and Prediction of Deep Learning
Workloads in Large-Scale GPU Datacenters" (SC'21, Helios).
"""

from __future__ import annotations

from collections.abc import Sequence

from dcsim.policies.base import Decision, JobView, PolicyBase, PreemptiveView
from dcsim.policies.registry import register
from dcsim.policies.scheduling.preemptive import all_jobs, plan


@register("scheduler", "priority")
class PriorityQuota(PolicyBase):
    """Higher priority classes preempt lower ones; tenants under their quota reclaim from tenants over theirs."""

    preemptive = True

    def __init__(self, *, quotas: bool = True) -> None:
        self.quotas = quotas

    def schedule(self, view: PreemptiveView) -> Sequence[Decision]:
        running = {job.id for job in view.running()}
        jobs = sorted(all_jobs(view), key=lambda j: (-j.priority, j.id not in running, j.submit, j.id))
        guaranteed: set[int] = set()
        if self.quotas:
            used: dict[str, int] = {}
            quota = view.quotas
            for job in jobs:
                taken = used.get(job.tenant, 0) + job.demand
                if taken <= quota.get(job.tenant, 0):
                    used[job.tenant] = taken
                    guaranteed.add(job.id)

        def key(job: JobView) -> tuple[int, bool, bool, float, int]:
            return (-job.priority, job.id not in guaranteed, job.id not in running, job.submit, job.id)

        return plan(view, sorted(jobs, key=key))
