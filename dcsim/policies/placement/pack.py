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
        if 0 < remaining <= size:  # fits on one node: the first of the tightest bucket that fits (as below)
            nodes_with_free = view.nodes_with_free
            for free in range(remaining, size + 1):
                bucket = nodes_with_free(request.accelerator, free)
                if bucket:
                    return ((bucket[0], remaining),)
        # Whole free nodes first, in bucket order: what the loop below would take one by one.
        full = view.nodes_with_free(request.accelerator, size)
        whole = min(remaining // size, len(full)) if size > 0 else 0
        taken: dict[int, int] = dict.fromkeys(full[:whole], size)
        remaining -= whole * size
        first = _FirstUntaken(view, request.accelerator, taken)
        first.cursors[size] = whole
        while remaining > 0:
            node = first.best_fit(min(remaining, size), size)
            if node is None:  # nothing fits the chunk: take the fullest-free node left
                node = first.most_free(size)
                if node is None:
                    break
            count = min(remaining, view.free_on[node])
            taken[node] = count
            remaining -= count
        return tuple(taken.items())


class _FirstUntaken:
    """The first node not yet taken in each free-count bucket. The view does not change while a job
    is placed and nodes are taken in bucket order, so one cursor per bucket only moves forward: a
    2,048-node job is placed in linear time, not quadratic. The buckets are read from the view once."""

    def __init__(self, view: ClusterView, accelerator: str, taken: dict[int, int]) -> None:
        self.taken = taken
        size = view.max_node_size[accelerator]
        self.buckets = [view.nodes_with_free(accelerator, free) for free in range(size + 1)]
        self.cursors = [0] * (size + 1)

    def first(self, free: int) -> int | None:
        bucket = self.buckets[free]
        index = self.cursors[free]
        taken = self.taken
        while index < len(bucket) and bucket[index] in taken:
            index += 1
        self.cursors[free] = index
        return bucket[index] if index < len(bucket) else None

    def best_fit(self, need: int, size: int) -> int | None:
        for free in range(need, size + 1):
            node = self.first(free)
            if node is not None:
                return node
        return None

    def most_free(self, size: int) -> int | None:
        for free in range(size, 0, -1):
            node = self.first(free)
            if node is not None:
                return node
        return None
