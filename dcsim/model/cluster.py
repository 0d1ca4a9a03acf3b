"""Cluster state: nodes, free accelerators per node, and the indexes policies query.

Nodes of one accelerator model are indexed by how many accelerators they have free, each bucket a
sorted list of node ids, so best-fit and spread placements are O(node size) lookups rather than scans.
Each node may carry network locality groups, coarse to fine (`Topology.host_groups`), for
topology-aware placement; () when the scenario has no network.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from dcsim.catalog import AcceleratorSpec


@dataclass(frozen=True, slots=True)
class Node:
    id: int
    name: str
    pool: str
    accelerator: str
    size: int
    host_idle_w: float
    host_busy_w: float


class Cluster:
    """Mutable allocation state over immutable nodes; the engine is its only writer."""

    def __init__(self, nodes: Sequence[Node], specs: dict[str, AcceleratorSpec],
                 groups: Sequence[tuple[str, ...]] | None = None) -> None:
        self.nodes: tuple[Node, ...] = tuple(nodes)
        self.specs = specs
        if groups is not None and len(groups) != len(self.nodes):
            raise ValueError(f"groups: one per node expected, got {len(groups)} for {len(self.nodes)} nodes")
        self.groups: tuple[tuple[str, ...], ...] = (
            tuple(tuple(labels) for labels in groups) if groups is not None else ((),) * len(self.nodes))
        self.free_on: list[int] = [node.size for node in self.nodes]
        self.accelerator_models: tuple[str, ...] = tuple(dict.fromkeys(n.accelerator for n in self.nodes))
        self.capacity: dict[str, int] = dict.fromkeys(self.accelerator_models, 0)
        self.max_node_size: dict[str, int] = dict.fromkeys(self.accelerator_models, 0)
        for node in self.nodes:
            self.capacity[node.accelerator] += node.size
            self.max_node_size[node.accelerator] = max(self.max_node_size[node.accelerator], node.size)
        self.free: dict[str, int] = dict(self.capacity)
        self._buckets: dict[str, list[list[int]]] = {
            model: [[] for _ in range(self.max_node_size[model] + 1)] for model in self.accelerator_models
        }
        for node in self.nodes:
            self._buckets[node.accelerator][node.size].append(node.id)
        self.pools: tuple[str, ...] = tuple(dict.fromkeys(n.pool for n in self.nodes))
        self.occupied_nodes: dict[str, int] = dict.fromkeys(self.pools, 0)
        # Out of service (failed, under repair): held per node, and still owed by holders on that node.
        self.down: dict[str, int] = dict.fromkeys(self.accelerator_models, 0)
        self.out_of_service: dict[int, int] = {}
        self._owed: dict[int, int] = {}

    # --- queries (the ClusterView protocol) ---------------------------------------------------
    def nodes_with_free(self, accelerator: str, free: int) -> Sequence[int]:
        """Ids of nodes of this model with exactly `free` free accelerators, ascending."""
        buckets = self._buckets[accelerator]
        return buckets[free] if 0 <= free < len(buckets) else ()

    # --- updates (engine only) ----------------------------------------------------------------
    def allocate(self, node_id: int, count: int) -> None:
        self._move(node_id, -count)

    def release(self, node_id: int, count: int) -> None:
        self._move(node_id, count)
        if self._owed:
            self._absorb(node_id)

    def allocate_all(self, allocation: Sequence[tuple[int, int]]) -> None:
        """Take a job's (node, count) pairs; many nodes at once re-sort each bucket once, not per node."""
        if len(allocation) == 1:  # one node (most jobs)
            node, count = allocation[0]
            self._move(node, -count)
            return
        self._move_all([(node, -count) for node, count in allocation])

    def release_all(self, allocation: Sequence[tuple[int, int]]) -> None:
        if len(allocation) == 1:
            self._move(*allocation[0])
        else:
            self._move_all(list(allocation))
        if self._owed:  # few nodes owe accelerators to repairs: look only at those
            nodes = dict(allocation)
            for node_id in [node for node in self._owed if node in nodes]:
                self._absorb(node_id)

    def _move_all(self, moves: list[tuple[int, int]]) -> None:
        if len(moves) < 32:  # few nodes: bisect each (the common case)
            for node_id, delta in moves:
                self._move(node_id, delta)
            return
        leaving: dict[tuple[str, int], set[int]] = {}
        arriving: dict[tuple[str, int], list[int]] = {}
        for node_id, delta in moves:
            node = self.nodes[node_id]
            before = self.free_on[node_id]
            after = before + delta
            leaving.setdefault((node.accelerator, before), set()).add(node_id)
            arriving.setdefault((node.accelerator, after), []).append(node_id)
            self._count(node, before, after)
        for (model, free), nodes in leaving.items():
            bucket = self._buckets[model][free]
            bucket[:] = [node for node in bucket if node not in nodes]
        for (model, free), added in arriving.items():
            bucket = self._buckets[model][free]
            bucket.extend(added)
            bucket.sort()

    def _move(self, node_id: int, delta: int) -> None:
        node = self.nodes[node_id]
        free_on = self.free_on
        before = free_on[node_id]
        after = before + delta
        buckets = self._buckets[node.accelerator]
        old = buckets[before]
        del old[bisect.bisect_left(old, node_id)]
        bisect.insort(buckets[after], node_id)
        # _count, inlined: a hot path of long replays
        free_on[node_id] = after
        self.free[node.accelerator] += delta
        if before == node.size:
            self.occupied_nodes[node.pool] += 1
        elif after == node.size:
            self.occupied_nodes[node.pool] -= 1

    def _count(self, node: Node, before: int, after: int) -> None:
        """The node now has `after` free instead of `before`: per-node, per-model and per-pool counts."""
        self.free_on[node.id] = after
        self.free[node.accelerator] += after - before
        if before == node.size:
            self.occupied_nodes[node.pool] += 1
        elif after == node.size:
            self.occupied_nodes[node.pool] -= 1

    # --- out of service (failures: engine/failures.py) ----------------------------------------------
    def set_out_of_service(self, node_id: int, count: int) -> None:
        """Keep `count` accelerators of the node out of service (under repair). Free ones are taken at
        once; the rest as the jobs and replicas holding them let go (release absorbs them), so nothing
        under repair is ever allocated. Lowering the count returns accelerators to the free pool."""
        node = self.nodes[node_id]
        count = max(0, min(count, node.size))
        held = self.out_of_service.get(node_id, 0)
        if count < held:
            self.down[node.accelerator] -= held - count
            self._move(node_id, held - count)
            held = count
        self._owed[node_id] = count - held
        if count:
            self.out_of_service[node_id] = held
        else:
            self.out_of_service.pop(node_id, None)
        self._absorb(node_id)

    def _absorb(self, node_id: int) -> None:
        owed = self._owed.get(node_id, 0)
        take = min(owed, self.free_on[node_id])
        if take:
            self._move(node_id, -take)
            self.out_of_service[node_id] += take
            self.down[self.nodes[node_id].accelerator] += take
            owed -= take
        if owed:
            self._owed[node_id] = owed
        else:
            self._owed.pop(node_id, None)
