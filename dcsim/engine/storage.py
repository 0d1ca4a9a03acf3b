"""Storage tiers in the simulation: where their bytes go on the network, and what they hold.

A tier's own read and write bandwidth are two links of the flow network that exist only for it
(reads cross its read link then the network; writes the network then its write link), so every
flow to or from a tier shares the tier's bandwidth max-min fairly with the others. A node-local
tier (NVMe) has a read and a write link per node and never touches the network. Capacity is
counted per tier (per node for node-local ones); a write reserves its bytes before it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dcsim.model.topology import Topology


@dataclass(eq=False)
class TierState:
    name: str
    kind: str
    capacity: float  # bytes; per node for node_local
    used: list[float]  # one entry, or one per node for node_local
    read_links: list[int]  # one, or one per node
    write_links: list[int]
    latency: float
    attach: str | None  # the tier's node in the topology (shared tiers on a network)
    power_per_tb: float
    pj_per_bit: float

    @property
    def local(self) -> bool:
        return self.kind == "node_local"

    @property
    def total_capacity(self) -> float:
        return self.capacity * len(self.used)

    def free(self, node_id: int) -> float:
        return self.capacity - self.used[node_id if self.local else 0]


class StorageSystem:
    def __init__(self, tiers: Sequence[TierState], topology: Topology | None, hosts: Sequence[str]) -> None:
        self.tiers = {tier.name: tier for tier in tiers}
        self.topology = topology
        self.hosts = tuple(hosts)
        self.down: set[str] = set()  # failed tiers (engine/failures.py): nothing reads or writes them

    def read_path(self, tier: str, node_id: int) -> list[int]:
        state = self.tiers[tier]
        if state.local:
            return [state.read_links[node_id]]
        network = self.topology.path(state.attach, self.hosts[node_id]) \
            if self.topology is not None and state.attach is not None else []
        return [state.read_links[0], *network]

    def write_path(self, tier: str, node_id: int) -> list[int]:
        state = self.tiers[tier]
        if state.local:
            return [state.write_links[node_id]]
        network = self.topology.path(self.hosts[node_id], state.attach) \
            if self.topology is not None and state.attach is not None else []
        return [*network, state.write_links[0]]

    def reserve(self, tier: str, shards: Sequence[tuple[int, float]]) -> str | None:
        """Reserve bytes for a write of (node id, bytes) shards; None if it fits, else why not."""
        state = self.tiers[tier]
        if state.local:
            for node_id, size in shards:
                if size > state.free(node_id):
                    return (f"a checkpoint shard of {size / 1e9:.3g} GB does not fit on {tier} of node "
                            f"{self.hosts[node_id]} ({state.free(node_id) / 1e9:.3g} GB free)")
            for node_id, size in shards:
                state.used[node_id] += size
            return None
        total = sum(size for _, size in shards)
        if total > state.free(0):
            return (f"a checkpoint of {total / 1e9:.3g} GB does not fit on storage tier {tier} "
                    f"({state.free(0) / 1e9:.3g} GB free of {state.capacity / 1e9:.3g} GB)")
        state.used[0] += total
        return None

    def release(self, tier: str, shards: Sequence[tuple[int, float]]) -> None:
        state = self.tiers[tier]
        for node_id, size in shards:
            index = node_id if state.local else 0
            state.used[index] = max(0.0, state.used[index] - size)
