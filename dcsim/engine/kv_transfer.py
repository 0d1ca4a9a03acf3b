"""KV-cache transfers from a prefill replica's node to a decode replica's node.

With a network section the transfer is a flow on the fabric (engine/fabric.py): it shares its links
max-min fairly with training's all-reduce streams, checkpoints and weight loads, so training traffic
slows it and it slows training. Without one, each sending node has one NIC of `bandwidth` bytes/s and
its transfers go one after another, first come first served (the queue a single RDMA queue pair
gives): a transfer takes latency + bytes / bandwidth once the NIC is free. Two replicas on one node
copy at `local_bandwidth` (NVLink), with no queue and no network flow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import simpy

from dcsim.engine.timers import call_after

if TYPE_CHECKING:  # the fabric loads numba and the topology networkx: only runs with a network import them
    from dcsim.engine.fabric import Fabric
    from dcsim.model.topology import Topology


@dataclass(frozen=True, slots=True)
class TransferRecord:
    request: int
    source_replica: int
    target_replica: int
    bytes: float
    start: float
    end: float


class KVTransfers:
    def __init__(self, env: simpy.Environment, bandwidth: float, local_bandwidth: float, latency: float) -> None:
        self.env = env
        self.bandwidth = bandwidth
        self.local_bandwidth = local_bandwidth
        self.latency = latency
        self.fabric: Fabric | None = None  # set (with topology) when the scenario has a network
        self.topology: Topology | None = None
        self._nic_free_at: dict[int, float] = {}
        self.records: list[TransferRecord] = []

    def send(self, request: int, source: tuple[int, int, str], target: tuple[int, int, str], size: float,
             on_done: Callable[[], None]) -> None:
        """Move `size` bytes from source (replica id, node id, node name) to target; then call `on_done`."""
        now = self.env.now
        finish = partial(self._done, request, source[0], target[0], size, now, on_done)
        if source[1] == target[1]:
            call_after(self.env, self.latency + size / self.local_bandwidth, finish)
        elif self.fabric is not None and self.topology is not None:
            links = self.topology.path(source[2], target[2])
            self.fabric.transfer([links], [size], lambda: finish(None),
                                 latency=self.latency + self.topology.path_latency(links))
        else:
            start = max(now, self._nic_free_at.get(source[1], 0.0))
            end = start + size / self.bandwidth
            self._nic_free_at[source[1]] = end
            call_after(self.env, end + self.latency - now, finish)

    def _done(self, request: int, source: int, target: int, size: float, start: float,
              on_done: Callable[[], None], _event: simpy.Event | None) -> None:
        self.records.append(TransferRecord(request, source, target, size, start, self.env.now))
        on_done()
