"""Validation of a placement policy's answer (the engine acts only on checked decisions)."""

from __future__ import annotations

from dcsim.errors import PolicyError
from dcsim.model import Cluster, Job
from dcsim.policies.base import Placement


def check_allocation(cluster: Cluster, placement: Placement, job: Job, accelerator: str, allocation: object) -> None:
    """Raise PolicyError unless the answer is (node, count) pairs of free accelerators summing to the demand."""
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
