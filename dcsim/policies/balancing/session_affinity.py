"""Session affinity by consistent hashing (Karger et al. 1997) of the request key.

Requests with the same key (a session, a user, a shared prompt prefix) reach the same replica, where
its KV-cache prefix may still be warm. Each replica owns `virtual_nodes` points on a 64-bit ring; a
key goes to the owner of the first point clockwise of its hash. Removing a replica moves only the
keys it owned; adding one takes keys only from others. Hashes are blake2b, not Python's salted
hash(), so runs repeat across processes.
"""

from __future__ import annotations

from bisect import bisect_right
from hashlib import blake2b

from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import BalancerView, RequestView

_RINGS_KEPT = 8  # offered sets differ per request when some replicas' KV caches are too small


@register("balancer", "session_affinity")
class SessionAffinity(PolicyBase):
    """Consistent hashing of the request key onto replicas: same key, same replica while it is offered."""

    def __init__(self, *, virtual_nodes: int = 64) -> None:
        if virtual_nodes < 1:
            raise ValueError(f"virtual_nodes must be >= 1, got {virtual_nodes}")
        self.virtual_nodes = virtual_nodes
        self._points: dict[int, list[int]] = {}  # replica id -> its ring points
        self._rings: dict[tuple[int, ...], tuple[list[int], list[int]]] = {}  # offered ids -> (points, owners)

    def choose(self, request: RequestView, view: BalancerView) -> int:
        points, owners = self._ring(tuple(replica.id for replica in view.replicas))
        return owners[bisect_right(points, _hash(f"key:{request.key}")) % len(points)]

    def _ring(self, ids: tuple[int, ...]) -> tuple[list[int], list[int]]:
        ring = self._rings.get(ids)
        if ring is None:
            entries = sorted((point, replica) for replica in ids for point in self._replica_points(replica))
            ring = ([point for point, _ in entries], [replica for _, replica in entries])
            if len(self._rings) >= _RINGS_KEPT:
                del self._rings[next(iter(self._rings))]  # oldest first
            self._rings[ids] = ring
        return ring

    def _replica_points(self, replica: int) -> list[int]:
        points = self._points.get(replica)
        if points is None:
            points = self._points[replica] = [_hash(f"replica:{replica}:{v}") for v in range(self.virtual_nodes)]
        return points


def _hash(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")
