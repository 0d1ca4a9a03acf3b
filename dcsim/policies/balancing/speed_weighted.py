"""Speed-weighted least load, for heterogeneous replicas (say A100 and H100) behind one balancer.

Plain least-outstanding equalises request counts, so a slow replica holds as many requests as a fast
one and its requests finish later. Dividing by speed equalises expected drain time instead; the +1
counts the request being placed, so an idle fast replica beats an idle slow one.
"""

from __future__ import annotations

from dcsim.policies.balancing.common import Rotation
from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import BalancerView, ReplicaView, RequestView


@register("balancer", "speed_weighted")
class SpeedWeighted(Rotation, PolicyBase):
    """Replica minimising (unfinished requests + 1) / relative speed; ties round robin."""

    def __init__(self) -> None:
        pass

    def choose(self, request: RequestView, view: BalancerView) -> int:
        return self.least(view.replicas, _drain_time)


def _drain_time(replica: ReplicaView) -> float:
    return (replica.outstanding + 1) / replica.speed
