"""Queue target: size the service so each replica holds about `target_outstanding` unfinished requests.

Reacts to demand directly (requests arrived and not finished), not to a utilisation that saturates
at 1 and so cannot tell how far over capacity the service is.
"""

from __future__ import annotations

from dcsim.policies.autoscaling.common import ScaleDownWindow, ceil_ratio, check_interval, check_window
from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import AutoscalerView


@register("autoscaler", "queue_target")
class QueueTarget(PolicyBase):
    """ceil(unfinished requests / target_outstanding) replicas, every `interval` seconds."""

    def __init__(self, *, target_outstanding: float = 16.0, interval: float = 30.0,
                 scale_down_window: float = 300.0) -> None:
        if not target_outstanding > 0:
            raise ValueError(f"target_outstanding must be > 0, got {target_outstanding}")
        check_interval(interval)
        check_window(scale_down_window)
        self.target_outstanding = target_outstanding
        self.interval: float | None = interval  # the Protocol's mutable attribute type
        self.scale_down_window = scale_down_window
        self._window = ScaleDownWindow()

    def desired(self, view: AutoscalerView) -> int:
        wanted = ceil_ratio(view.outstanding, self.target_outstanding)
        return self._window.stabilize(view.now, self.scale_down_window, wanted)
