"""Instantaneous IT power from cluster state; energy is its exact integral over the level rows."""

from __future__ import annotations

from collections.abc import Mapping

from dcsim.model import Cluster


class PowerModel:
    """Accelerators draw idle power, or busy_power_fraction x TDP while computing; hosts draw their
    idle power, or busy power while any of their accelerators is allocated."""

    def __init__(self, cluster: Cluster, busy_power_fraction: float) -> None:
        self._models = cluster.accelerator_models
        self._idle = {m: cluster.specs[m].idle_w.value for m in self._models}
        self._busy = {m: max(cluster.specs[m].tdp_w.value * busy_power_fraction, self._idle[m]) for m in self._models}
        self._capacity = dict(cluster.capacity)
        self._pools: dict[str, tuple[int, float, float]] = {}
        for node in cluster.nodes:
            count, idle, busy = self._pools.get(node.pool, (0, node.host_idle_w, node.host_busy_w))
            self._pools[node.pool] = (count + 1, idle, busy)

    def accelerators_w(self, busy: Mapping[str, int]) -> float:
        return sum(self._idle[m] * (self._capacity[m] - busy[m]) + self._busy[m] * busy[m] for m in self._models)

    def hosts_w(self, occupied_nodes: Mapping[str, int]) -> float:
        return sum(idle * (count - occupied_nodes[pool]) + busy * occupied_nodes[pool]
                   for pool, (count, idle, busy) in self._pools.items())
