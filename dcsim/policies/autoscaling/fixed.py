"""Fixed: no autoscaling; the service keeps the replica count it started with."""

from __future__ import annotations

from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import AutoscalerView


@register("autoscaler", "fixed")
class Fixed(PolicyBase):
    """Keep the configured replica count; never asked to decide."""

    interval: float | None = None

    def __init__(self) -> None:
        pass

    def desired(self, view: AutoscalerView) -> int:
        return view.replicas
