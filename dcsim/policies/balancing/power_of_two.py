"""Power of d choices (Mitzenmacher 2001): sample d replicas, send to the least loaded of them.

Nearly as good as least-outstanding with far less herding when load information is stale, and the
standard comparison point for it.
"""

from __future__ import annotations

from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import BalancerView, RequestView


@register("balancer", "power_of_two_choices")
class PowerOfTwoChoices(PolicyBase):
    """Sample `choices` distinct replicas at random; take the one with fewest unfinished requests."""

    def __init__(self, *, choices: int = 2) -> None:
        if choices < 2:
            raise ValueError(f"choices must be >= 2, got {choices}")
        self.choices = choices

    def choose(self, request: RequestView, view: BalancerView) -> int:
        replicas = view.replicas
        if len(replicas) == 1:
            return replicas[0].id
        sampled = view.rng.choice(len(replicas), size=min(self.choices, len(replicas)), replace=False)
        # min() keeps the first of equals: ties go to the first sampled.
        return min((replicas[int(i)] for i in sampled), key=lambda replica: replica.outstanding).id
