"""Topology-aware: keep a job's nodes under as few switches as possible, best fit at every level.

A job that fits on one node goes to the node with the fewest free accelerators that still holds it
(one NVLink domain, least fragmentation), found in the cluster's free-count buckets without a scan.

A larger job tries the locality groups of the nodes (`ClusterView.groups`, from the network
topology: leaf, then pod, ...) from the finest level to the coarsest. At each level, among the
groups whose nodes of the job's accelerator model have enough free accelerators in total, it takes
the one with the least free (best fit: big groups stay whole for big jobs; ties go to the group of
the lowest node id). Inside the chosen group it takes the nodes with the most free first (fewest
nodes) and, for the last piece, the node with the smallest free count that covers it. When no single
group fits, the job spans the coarsest groups, most free first with a best-fit last group, nodes
inside each as above. Without groups (no network in the scenario) it is a fewest-nodes pack.

Partitions (coarsest label "partition-<i>": islands of the network that cannot reach each other)
are never spanned. The engine calls a placement when enough accelerators of the model are free in
the whole cluster; if they are spread over partitions so that none holds the job, this policy
returns no allocation and the engine reports a PolicyError. Schedulers do not know about
partitions, so on a partitioned cluster this is a limitation: use it where jobs fit in a partition
whenever the cluster has room for them (e.g. partitions of equal size and jobs no larger than one).

A multi-node placement reads every node of the model with a free accelerator (O(nodes)); a
single-node placement reads only the buckets.
"""

from __future__ import annotations

from collections.abc import Sequence

from dcsim.policies.base import Allocation, ClusterView, PlacementRequest, PolicyBase
from dcsim.policies.registry import register

PARTITION = "partition-"

Candidate = tuple[int, int]  # (node id, free accelerators)


@register("placement", "topology_aware")
class TopologyAware(PolicyBase):
    """Fewest nodes under the fewest switches: best-fit node, else best-fit leaf, pod, ...; never spans partitions."""

    def __init__(self) -> None:
        pass

    def place(self, request: PlacementRequest, view: ClusterView) -> Allocation:
        accelerator, demand = request.accelerator, request.demand
        size = view.max_node_size[accelerator]
        if demand <= size:
            for free in range(demand, size + 1):  # best fit on one node
                nodes = view.nodes_with_free(accelerator, free)
                if nodes:
                    return ((nodes[0], demand),)
        # Every node of the model with a free accelerator, most free first, ties by node id.
        candidates = [(node, free) for free in range(size, 0, -1) for node in view.nodes_with_free(accelerator, free)]
        groups = view.groups
        depth = max((len(groups[node]) for node, _ in candidates), default=0)
        if depth == 0:
            return _take(candidates, demand)
        for level in range(depth, 0, -1):  # finest first
            members = _group(candidates, groups, level)
            fitting = [(total, order, key) for key, (order, total) in _totals(members).items() if total >= demand]
            if fitting:
                _, _, key = min(fitting)
                return _take(members[key], demand)
        coarse = _group(candidates, groups, 1)
        if any(key[0].startswith(PARTITION) for key in coarse if key):
            return ()  # no partition holds the job, and a job never spans two
        ungrouped = [candidate for candidate in candidates if not groups[candidate[0]]]
        if ungrouped:
            coarse[()] = ungrouped
        return _span(coarse, demand)


def _group(candidates: Sequence[Candidate], groups: Sequence[tuple[str, ...]],
           level: int) -> dict[tuple[str, ...], list[Candidate]]:
    """Candidates by their labels down to `level` (nodes with fewer labels are left out), keeping the order."""
    members: dict[tuple[str, ...], list[Candidate]] = {}
    for candidate in candidates:
        labels = groups[candidate[0]]
        if len(labels) >= level:
            members.setdefault(labels[:level], []).append(candidate)
    return members


def _totals(members: dict[tuple[str, ...], list[Candidate]]) -> dict[tuple[str, ...], tuple[int, int]]:
    """(lowest node id, free accelerators in all) of each group."""
    return {key: (min(node for node, _ in nodes), sum(free for _, free in nodes)) for key, nodes in members.items()}


def _take(candidates: Sequence[Candidate], need: int) -> Allocation:
    """Most free first (fewest nodes); the last piece from the node with the smallest free count that
    covers it (lowest id among equals). `candidates` are ordered most free first, ties by id."""
    taken: list[tuple[int, int]] = []
    remaining = need
    for index, (node, free) in enumerate(candidates):
        if free < remaining:
            taken.append((node, free))
            remaining -= free
            continue
        # The nodes from here on that cover the rest lead the list; the best fit is the one with the least free.
        fit = min((c for c in candidates[index:] if c[1] >= remaining), key=lambda c: (c[1], c[0]))
        taken.append((fit[0], remaining))
        break
    return tuple(taken)


def _span(members: dict[tuple[str, ...], list[Candidate]], need: int) -> Allocation:
    """Across groups: the most free first (fewest groups), the last piece from the group with the
    least free that covers it; nodes inside each group as in `_take`."""
    totals = _totals(members)
    remaining = need
    taken: list[tuple[int, int]] = []
    left = set(members)
    while remaining > 0 and left:
        covering = [(totals[key][1], totals[key][0], key) for key in left if totals[key][1] >= remaining]
        if covering:
            key = min(covering)[2]
            taken.extend(_take(members[key], remaining))
            break
        key = max(left, key=lambda k: (totals[k][1], -totals[k][0]))
        taken.extend(members[key])  # the whole group
        remaining -= totals[key][1]
        left.remove(key)
    return tuple(taken)
