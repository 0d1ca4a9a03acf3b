"""Round robin: every offered replica in turn, by id."""

from __future__ import annotations

from dcsim.policies.balancing.common import Rotation
from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import BalancerView, RequestView


@register("balancer", "round_robin")
class RoundRobin(Rotation, PolicyBase):
    """Each request to the replica after the last one chosen (by id, wrapping); ignores load."""

    def __init__(self) -> None:
        pass

    def choose(self, request: RequestView, view: BalancerView) -> int:
        return self.rotate([replica.id for replica in view.replicas])
