"""Helpers shared by autoscalers."""

from __future__ import annotations

import math
from collections import deque

_EPSILON = 1e-9


def ceil_ratio(numerator: float, denominator: float) -> int:
    """ceil(numerator / denominator), forgiving float noise: 4 * 0.7 / 0.7 is 4, not 5."""
    return math.ceil(numerator / denominator - _EPSILON)


def check_interval(interval: float) -> None:
    if not interval > 0:
        raise ValueError(f"interval must be > 0, got {interval}")


def check_window(window: float) -> None:
    if not window >= 0:
        raise ValueError(f"scale_down_window must be >= 0, got {window}")


class ScaleDownWindow:
    """Scale down only to the highest recommendation of the last `window` seconds (Kubernetes' HPA
    stabilisation window): a replica that has just paid its cold start is not drained at the next
    dip, which would make the service flap between sizes."""

    def __init__(self) -> None:
        self.history: deque[tuple[float, int]] = deque()

    def stabilize(self, now: float, window: float, recommendation: int) -> int:
        history = self.history
        history.append((now, recommendation))
        while history and history[0][0] < now - window:
            history.popleft()
        return max(value for _, value in history)
