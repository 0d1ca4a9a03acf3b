"""Helpers shared by autoscalers."""

from __future__ import annotations

import math

_EPSILON = 1e-9


def ceil_ratio(numerator: float, denominator: float) -> int:
    """ceil(numerator / denominator), forgiving float noise: 4 * 0.7 / 0.7 is 4, not 5."""
    return math.ceil(numerator / denominator - _EPSILON)


def check_interval(interval: float) -> None:
    if not interval > 0:
        raise ValueError(f"interval must be > 0, got {interval}")
