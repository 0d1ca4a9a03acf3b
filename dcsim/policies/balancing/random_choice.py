"""Random: a uniform choice, the baseline that needs no state and no load signal."""

from __future__ import annotations

from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import BalancerView, RequestView


@register("balancer", "random")
class Random(PolicyBase):
    """Uniformly random replica from the balancer's seeded stream; ignores load."""

    def __init__(self) -> None:
        pass

    def choose(self, request: RequestView, view: BalancerView) -> int:
        replicas = view.replicas
        return replicas[int(view.rng.integers(len(replicas)))].id
