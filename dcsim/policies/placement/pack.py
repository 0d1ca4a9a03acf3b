"""Pack: fewest nodes, best fit. Whole free nodes for the bulk, the tightest node for the rest."""

from __future__ import annotations

from dcsim.policies.base import Allocation, ClusterView, PlacementRequest, PolicyBase
from dcsim.policies.registry import register


@register("placement", "pack")
class Pack(PolicyBase):
    """Use as few nodes as possible; among nodes that fit, the one with the fewest free (best fit)."""

    def __init__(self) -> None:
        pass

    def place(self, request: PlacementRequest, view: ClusterView) -> Allocation:
        size = view.max_node_size[request.accelerator]
        remaining = request.demand
        taken: dict[int, int] = {}
        while remaining > 0:
            node = _best_fit(view, request.accelerator, min(remaining, size), size, taken)
            if node is None:  # nothing fits the chunk: take the fullest-free node left
                node = _most_free(view, request.accelerator, size, taken)
                if node is None:
                    break
            count = min(remaining, view.free_on[node])
            taken[node] = count
            remaining -= count
        return tuple(taken.items())


def _best_fit(view: ClusterView, accelerator: str, need: int, size: int, taken: dict[int, int]) -> int | None:
    for free in range(need, size + 1):
        for node in view.nodes_with_free(accelerator, free):
            if node not in taken:
                return node
    return None


def _most_free(view: ClusterView, accelerator: str, size: int, taken: dict[int, int]) -> int | None:
    for free in range(size, 0, -1):
        for node in view.nodes_with_free(accelerator, free):
            if node not in taken:
                return node
    return None
