"""Switch and link failures on the network model: routes go around them, or the jobs they cut stop.

When a switch or a link (`fabric_link`: any physical link of the topology, host links included)
fails, every training job with streams on the fabric (ring all-reduce, dataset input) reopens them
over the remaining shortest paths (engine/traffic.py); a job with no route left between its nodes,
or to its storage tier, is interrupted like any failed job. Hosts outside the largest island of
hosts the failures leave are cut off: the failure process takes them out of service until they are
reachable again. A repair restores the component and reroutes the jobs again, so routes go back to
the shortest ones. Transfers already under way (a checkpoint write, a replica's weight load) keep
their paths; a checkpoint being written by a rerouted job is abandoned (its next one starts an
interval later).
"""

from __future__ import annotations

from collections.abc import Callable

from dcsim.engine.traffic import TrainingTraffic
from dcsim.model import Cluster, Job
from dcsim.model.topology import Topology


class NetworkFailures:
    def __init__(self, topology: Topology | None, traffic: TrainingTraffic | None, cluster: Cluster,
                 interrupt: Callable[[Job], None]) -> None:
        self.topology = topology
        self.traffic = traffic
        self.interrupt = interrupt
        self.node_of = {node.name: node.id for node in cluster.nodes}

        self._links = topology.physical_links() if topology is not None else []
        storage = traffic.storage if traffic is not None else None
        self.tiers = [name for name, tier in storage.tiers.items() if not tier.local] if storage is not None else []

    def components(self, kind: str) -> list[str]:
        """Names of the switches (kind "switch"), physical links ("fabric_link", as "a<->b") or shared
        storage tiers ("storage")."""
        if kind == "switch":
            return self.topology.switches() if self.topology is not None else []
        if kind == "storage":
            return self.tiers
        return [f"{a}<->{b}" for a, b in self._links]

    def fail(self, kind: str, index: int) -> list[int]:
        """Take the component down; return the ids of the jobs it left without a route (stopped). A
        storage tier stops no job: those streaming from it stall until it is back."""
        return self._switch(kind, index, True)

    def cut_off(self) -> set[int]:
        """Node ids outside the largest island of hosts the failed components leave."""
        if self.topology is None:
            return set()
        return {self.node_of[host] for host in self.topology.cut_off() if host in self.node_of}

    def restore(self, kind: str, index: int) -> list[int]:
        return self._switch(kind, index, False)

    def _switch(self, kind: str, index: int, down: bool) -> list[int]:
        if kind == "storage":
            if self.traffic is not None:
                self.traffic.set_tier_down(self.tiers[index], down)
            return []
        self._set(kind, index, down)
        return self._reroute()

    def _set(self, kind: str, index: int, down: bool) -> None:
        assert self.topology is not None
        if kind == "switch":
            self.topology.set_down(self.topology.switches()[index], down)
        else:
            self.topology.set_link_down(*self._links[index], down)

    def _reroute(self) -> list[int]:
        """Reopen every fabric-using job's streams on the current routes; stop those left without one."""
        if self.traffic is None:
            return []
        stranded = [job for job in self.traffic.fabric_jobs() if not self.traffic.reroute(job)]
        for job in stranded:
            self.interrupt(job)
        return [job.id for job in stranded]
