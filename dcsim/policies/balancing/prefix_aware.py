"""Cache-aware routing: prefer the replica that already holds the longest prefix, weighed against load.

As the prefix-cache and load scorers of llm-d's router (and SGLang's cache-aware router) combine: each
offered replica scores

    prefix_weight x (prompt tokens cached there / prompt tokens)
    - load_weight x (its unfinished tokens / the most unfinished tokens among the offered replicas)

and the highest score wins; ties rotate (balancing.common). With load_weight = 0 a popular prefix piles
onto one replica; with prefix_weight = 0 this is least_tokens. The cached length comes from the
replica's view (`prefix_hit`, read-only), so it is exact rather than a router-side estimate; it is 0
for services without paged_kv prefix caching.
"""

from __future__ import annotations

from dcsim.policies.balancing.common import Rotation
from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import BalancerView, RequestView


@register("balancer", "prefix_aware")
class PrefixAware(Rotation, PolicyBase):
    """Highest prefix_weight x cached share - load_weight x relative load; ties round robin."""

    def __init__(self, *, prefix_weight: float = 1.0, load_weight: float = 1.0) -> None:
        for name, value in (("prefix_weight", prefix_weight), ("load_weight", load_weight)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.prefix_weight = prefix_weight
        self.load_weight = load_weight

    def choose(self, request: RequestView, view: BalancerView) -> int:
        replicas = view.replicas
        most = max(replica.outstanding_tokens for replica in replicas) or 1
        prompt = request.prompt_tokens
        costs = [self.load_weight * replica.outstanding_tokens / most
                 - (self.prefix_weight * replica.prefix_hit(request) / prompt if self.prefix_weight else 0.0)
                 for replica in replicas]
        best = min(costs)
        return self.rotate([replica.id for replica, cost in zip(replicas, costs, strict=True) if cost == best])
