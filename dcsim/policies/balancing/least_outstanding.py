"""Least-load balancers: fewest unfinished requests, or fewest unfinished tokens.

Ties go round robin (see balancing.common), not to the lowest id.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

from dcsim.policies.balancing.common import Rotation
from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import BalancerView, ReplicaView, RequestView


@register("balancer", "least_outstanding_requests")
class LeastOutstandingRequests(Rotation, PolicyBase):
    """Replica with the fewest unfinished requests; ties round robin."""

    def __init__(self) -> None:
        pass

    def choose(self, request: RequestView, view: BalancerView) -> int:
        return self.least(view.replicas, _outstanding)


@register("balancer", "least_tokens")
class LeastTokens(Rotation, PolicyBase):
    """Replica with the fewest unfinished prompt + output tokens (long requests weigh more); ties round robin."""

    def __init__(self) -> None:
        pass

    def choose(self, request: RequestView, view: BalancerView) -> int:
        return self.least(view.replicas, _tokens)


_outstanding: Callable[[ReplicaView], float] = attrgetter("outstanding")  # C-level reads: asked of every
_tokens: Callable[[ReplicaView], float] = attrgetter("outstanding_tokens")  # replica for every request
