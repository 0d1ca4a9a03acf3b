"""Validation of a placement policy's answer (the engine acts only on checked decisions)."""

from __future__ import annotations

from dcsim.errors import PolicyError
from dcsim.model import Cluster, Job
from dcsim.policies.base import Placement


def check_allocation(cluster: Cluster, placement: Placement, job: Job, accelerator: str, allocation: object) -> None:
    """Raise PolicyError unless the answer is (node, count) pairs of free accelerators summing to the demand."""
    if type(allocation) is tuple and _plainly_valid(cluster, job.demand, accelerator, allocation):
        return  # the common answer (a tuple of int pairs that passes every check below), checked cheaply
    name = getattr(placement, "name", type(placement).__name__)
    prefix = f"placement {name!r} for job {job.id} ({job.demand} x {accelerator})"
    try:
        pairs = [(int(node), int(count)) for node, count in allocation]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise PolicyError(f"{prefix}: expected (node id, count) pairs, got {allocation!r}") from None
    seen: set[int] = set()
    for node_id, count in pairs:
        if not 0 <= node_id < len(cluster.nodes):
            raise PolicyError(f"{prefix}: node {node_id} does not exist")
        node = cluster.nodes[node_id]
        if node.accelerator != accelerator:
            raise PolicyError(f"{prefix}: node {node.name} has {node.accelerator}, not {accelerator}")
        if node_id in seen or count < 1 or count > cluster.free_on[node_id]:
            raise PolicyError(f"{prefix}: takes {count} on node {node.name}, which has "
                              f"{cluster.free_on[node_id]} free (or is listed twice)")
        seen.add(node_id)
    if sum(count for _, count in pairs) != job.demand:
        raise PolicyError(f"{prefix}: allocates {sum(c for _, c in pairs)} accelerators, not {job.demand}")


def _plainly_valid(cluster: Cluster, demand: int, accelerator: str, allocation: tuple[object, ...]) -> bool:
    """True only where check_allocation would pass: int pairs on distinct nodes of the model, each
    within the node's free count, summing to the demand. False sends it to the full check (and its
    message)."""
    nodes, free_on = cluster.nodes, cluster.free_on
    total = 0
    for pair in allocation:
        if type(pair) is not tuple or len(pair) != 2:
            return False
        node_id, count = pair
        if type(node_id) is not int or type(count) is not int or not 0 <= node_id < len(nodes) \
                or nodes[node_id].accelerator != accelerator or not 1 <= count <= free_on[node_id]:
            return False
        total += count
    if total != demand:
        return False
    return len(allocation) == 1 or len({pair[0] for pair in allocation}) == len(allocation)  # type: ignore[index]
