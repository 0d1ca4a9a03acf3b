"""Helpers shared by autoscalers."""

from __future__ import annotations

import math
from collections import deque

_EPSILON = 1e-9


def ceil_ratio(numerator: float, denominator: float) -> int:
    """ceil(numerator / denominator), forgiving float noise: 4 * 0.7 / 0.7 is 4, not 5."""
    return math.ceil(numerator / denominator - _EPSILON)


MIN_INTERVAL = 1e-3  # s: shorter decision intervals stall the simulation clock in events that change nothing
MAX_SECONDS = 100 * 365 * 86400.0  # a century: beyond any simulated horizon


def check_interval(interval: float) -> None:
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval >= MIN_INTERVAL \
            or not interval <= MAX_SECONDS:
        raise ValueError(f"interval must be a number of seconds from {MIN_INTERVAL} to {MAX_SECONDS:.0f} "
                         f"(shorter intervals stall the simulation clock), got {interval!r:.40}")


def check_window(window: float) -> None:
    if isinstance(window, bool) or not isinstance(window, int | float) or not 0 <= window <= MAX_SECONDS:
        raise ValueError(f"scale_down_window must be a number of seconds from 0 to {MAX_SECONDS:.0f}, "
                         f"got {window!r:.40}")


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
