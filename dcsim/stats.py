"""Confidence intervals over seeds, shared by compare (tables) and reporting (error bars)."""

from __future__ import annotations

import math

import numpy as np


def mean_ci(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, 95% Student-t confidence half-width and count of the non-NaN values.

    The half-width is NaN with fewer than two values.
    """
    from scipy import stats as scipy_stats  # imported here: scipy costs about a second to import

    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan, 0
    if values.size == 1:
        return float(values[0]), math.nan, 1
    half = float(scipy_stats.t.ppf(0.975, values.size - 1)) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return float(values.mean()), half, int(values.size)
