"""Switch failures on the network model: routes go around a failed switch, or the jobs they cut stop.

When a switch fails, every training job with streams on the fabric (ring all-reduce, dataset
input) reopens them over the remaining shortest paths (engine/traffic.py); a job with no route left
between its nodes, or to its storage tier, is interrupted like any failed job. Hosts whose every
uplink goes to failed switches are cut off: the failure process takes them out of service until the
repair. A repair restores the switch and reroutes the jobs again, so routes go back to the shortest
ones. Transfers already under way (a checkpoint write, a replica's weight load) keep their paths; a
checkpoint being written by a rerouted job is abandoned (its next one starts an interval later).
"""

from __future__ import annotations

from collections.abc import Callable

from dcsim.engine.traffic import TrainingTraffic
from dcsim.model import Cluster, Job
from dcsim.model.topology import Topology


class SwitchFailures:
    def __init__(self, topology: Topology, traffic: TrainingTraffic | None, cluster: Cluster,
                 interrupt: Callable[[Job], None]) -> None:
        self.topology = topology
        self.traffic = traffic
        self.interrupt = interrupt
        self.node_of = {node.name: node.id for node in cluster.nodes}

    def switches(self) -> list[str]:
        return self.topology.switches()

    def fail(self, switch: str) -> tuple[list[int], list[int]]:
        """Take the switch down; return the node ids it cuts off and the ids of jobs it stopped."""
        self.topology.set_down(switch, True)
        stopped = self._reroute()
        return [self.node_of[host] for host in self.topology.cut_off() if host in self.node_of], stopped

    def restore(self, switch: str) -> list[int]:
        self.topology.set_down(switch, False)
        return self._reroute()

    def _reroute(self) -> list[int]:
        """Reopen every fabric-using job's streams on the current routes; stop those left without one."""
        if self.traffic is None:
            return []
        stranded = [job for job in self.traffic.fabric_jobs() if not self.traffic.reroute(job)]
        for job in stranded:
            self.interrupt(job)
        return [job.id for job in stranded]
