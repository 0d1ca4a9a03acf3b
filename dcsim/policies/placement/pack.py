"""Pack: fewest nodes, best fit. Whole free nodes for the bulk, the tightest node for the rest."""

from __future__ import annotations

from dcsim.policies.base import Allocation, ClusterView, PlacementRequest, PolicyBase, trusted_placement
from dcsim.policies.registry import register


@register("placement", "pack")
@trusted_placement
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
        accelerator = request.accelerator
        buckets = [view.nodes_with_free(accelerator, free) for free in range(size + 1)]
        full = buckets[size] if size > 0 else ()
        whole = min(remaining // size, len(full)) if size > 0 else 0
        taken: dict[int, int] = dict.fromkeys(full[:whole], size)
        remaining -= whole * size
        # The first node not yet taken in each free-count bucket. The view does not change while a job
        # is placed and nodes are taken in bucket order, so one cursor per bucket only moves forward: a
        # 2,048-node job is placed in linear time, not quadratic. (A node is in one bucket only: the
        # nodes taken from a bucket are the ones before its cursor.)
        cursors = [0] * (size + 1)
        if size > 0:
            cursors[size] = whole
        ends = [len(bucket) for bucket in buckets]
        free_on = view.free_on
        while remaining > 0:
            free = _first_open(cursors, ends, range(min(remaining, size), size + 1))  # best fit
            if free < 0:  # nothing fits the chunk: take the fullest-free node left
                free = _first_open(cursors, ends, range(size, 0, -1))
                if free < 0:
                    break
            node = buckets[free][cursors[free]]
            cursors[free] += 1
            count = min(remaining, free_on[node])
            taken[node] = count
            remaining -= count
        return tuple(taken.items())


def _first_open(cursors: list[int], ends: list[int], frees: range) -> int:
    """The first free count in `frees` whose bucket has a node not yet taken, or -1."""
    for free in frees:
        if cursors[free] < ends[free]:
            return free
    return -1
