"""Power coefficients of a cluster: what each busy accelerator and each occupied host adds.

IT power is linear in the state the engine reports (busy accelerators per model, occupied nodes per
pool): P = idle floor + busy . accelerator_delta + occupied . host_delta. The recorder applies it to
all level rows at once, so the engine does no power arithmetic per event and nothing drifts.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcsim.model.cluster import Cluster


@dataclass(frozen=True)
class PowerCoefficients:
    """Accelerators draw idle power, or their busy power while computing (calibrated training power,
    a TDP fraction, or a power cap); hosts draw their idle power, or busy power while any of their
    accelerators is allocated."""

    accelerators_idle_w: float  # all accelerators idle
    accelerator_delta_w: tuple[float, ...]  # per accelerator model, cluster.accelerator_models order
    hosts_idle_w: float  # all hosts idle
    host_delta_w: tuple[float, ...]  # per pool, cluster.pools order

    @classmethod
    def of(cls, cluster: Cluster, busy_w: dict[str, float]) -> PowerCoefficients:
        specs = cluster.specs
        idle = {m: specs[m].idle_w.value for m in cluster.accelerator_models}
        busy = {m: max(busy_w[m], idle[m]) for m in cluster.accelerator_models}
        pools = {node.pool: node for node in cluster.nodes}  # nodes of a pool share their host power
        return cls(
            accelerators_idle_w=sum(idle[m] * cluster.capacity[m] for m in cluster.accelerator_models),
            accelerator_delta_w=tuple(busy[m] - idle[m] for m in cluster.accelerator_models),
            hosts_idle_w=sum(node.host_idle_w for node in cluster.nodes),
            host_delta_w=tuple(pools[p].host_busy_w - pools[p].host_idle_w for p in cluster.pools),
        )
