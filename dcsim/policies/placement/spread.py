"""Spread: one accelerator per node across as many nodes as possible, emptiest nodes first."""

from __future__ import annotations

from dcsim.policies.base import Allocation, ClusterView, PlacementRequest, PolicyBase
from dcsim.policies.registry import register


@register("placement", "spread")
class Spread(PolicyBase):
    """Round-robin the job's accelerators over the nodes with the most free accelerators."""

    def __init__(self) -> None:
        pass

    def place(self, request: PlacementRequest, view: ClusterView) -> Allocation:
        size = view.max_node_size[request.accelerator]
        candidates: list[int] = []  # at most `demand` nodes, emptiest first
        for free in range(size, 0, -1):
            candidates.extend(view.nodes_with_free(request.accelerator, free)[: request.demand - len(candidates)])
            if len(candidates) >= request.demand:
                break
        taken = dict.fromkeys(candidates, 0)
        remaining = request.demand
        while remaining > 0:
            progressed = False
            for node in candidates:
                if remaining and taken[node] < view.free_on[node]:
                    taken[node] += 1
                    remaining -= 1
                    progressed = True
            if not progressed:
                break
        return tuple((node, count) for node, count in taken.items() if count)
