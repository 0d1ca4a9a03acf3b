"""Utilisation target, as Kubernetes' HPA does: ready replicas * busy fraction / target, rounded up.

Busy time saturates at 1, so on overload this grows the service by at most 1 / target per
decision; queue_target reacts faster to a surge.
"""

from __future__ import annotations

from dcsim.policies.autoscaling.common import ScaleDownWindow, ceil_ratio, check_interval, check_window
from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import AutoscalerView


@register("autoscaler", "utilization_target")
class UtilizationTarget(PolicyBase):
    """ceil(ready replicas * busy fraction / target) + replicas still loading; >= 1 while requests are unfinished."""

    def __init__(self, *, target: float = 0.7, interval: float = 30.0,
                 scale_down_window: float = 300.0) -> None:
        if not 0 < target <= 1:
            raise ValueError(f"target must be in (0, 1], got {target}")
        check_interval(interval)
        check_window(scale_down_window)
        self.target = target
        self.interval: float | None = interval  # the Protocol's mutable attribute type
        self.scale_down_window = scale_down_window
        self._window = ScaleDownWindow()

    def desired(self, view: AutoscalerView) -> int:
        # Busy fraction is measured over ready replicas; replicas still loading are kept as they are.
        wanted = ceil_ratio(view.ready * view.busy_fraction, self.target) + view.replicas - view.ready
        # With no replica there is no busy time to measure: outstanding requests must still get one.
        wanted = max(wanted, 1) if view.outstanding > 0 else wanted
        return self._window.stabilize(view.now, self.scale_down_window, wanted)
