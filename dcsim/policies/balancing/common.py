"""Round-robin rotation shared by balancers: the plain cycle and the tie break of the least-load ones.

Breaking ties by lowest id would pile every request onto replica 0 while the service is idle (all
loads equal); rotating past the last chosen id spreads them. Rotating by id, not by position,
keeps the cycle fair when the offered set changes between calls (autoscaling, KV-cache filtering).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

from dcsim.policies.serving_base import ReplicaView


class Rotation:
    """Remembers the last chosen replica id; picks the next one after it among candidates."""

    _last: int | None = None

    def rotate(self, ids: Sequence[int]) -> int:
        """The first of `ids` (ascending) greater than the last chosen id, wrapping to the first."""
        index = 0 if self._last is None else bisect_right(ids, self._last) % len(ids)
        self._last = ids[index]
        return self._last

    def least(self, replicas: Sequence[ReplicaView], load: Callable[[ReplicaView], float]) -> int:
        """Id of the replica with the least `load`; ties rotate (see the module docstring)."""
        loads = list(map(load, replicas))  # once each: a load can take a cache lookup
        best = min(loads)
        return self.rotate([replica.id for replica, value in zip(replicas, loads, strict=True) if value == best])
