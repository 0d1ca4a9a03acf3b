"""Wet-bulb temperature from dry bulb and dew point, for evaporative cooling and economizer hours.

Relative humidity from the Magnus formula (Alduchov and Eskridge 1996 coefficients, a = 17.625,
b = 243.04 degC), then the wet bulb from Stull (2011), "Wet-Bulb Temperature from Relative Humidity
and Air Temperature", J. Appl. Meteor. Climatol. 50, 2267-2269: within about 1 degC for RH 5-99 % and
-20..50 degC at sea-level pressure; RH is clipped to that range.
"""

from __future__ import annotations

import numpy as np

MAGNUS_A = 17.625
MAGNUS_B = 243.04  # degC


def relative_humidity(dry_bulb: np.ndarray, dew_point: np.ndarray) -> np.ndarray:
    """Relative humidity in percent."""
    dry, dew = np.asarray(dry_bulb, dtype=float), np.asarray(dew_point, dtype=float)
    gamma_dew = MAGNUS_A * dew / (MAGNUS_B + dew)
    gamma_dry = MAGNUS_A * dry / (MAGNUS_B + dry)
    return np.asarray(100.0 * np.exp(gamma_dew - gamma_dry))


def wet_bulb_stull(dry_bulb: np.ndarray, relative_humidity_percent: np.ndarray) -> np.ndarray:
    """Stull (2011) wet bulb, degC, never above the dry bulb."""
    t = np.asarray(dry_bulb, dtype=float)
    rh = np.clip(np.asarray(relative_humidity_percent, dtype=float), 5.0, 99.0)
    wet = (t * np.arctan(0.151977 * np.sqrt(rh + 8.313659)) + np.arctan(t + rh) - np.arctan(rh - 1.676331)
           + 0.00391838 * rh ** 1.5 * np.arctan(0.023101 * rh) - 4.686035)
    return np.asarray(np.minimum(wet, t))


def wet_bulb_from_dew_point(dry_bulb: np.ndarray, dew_point: np.ndarray) -> np.ndarray:
    return wet_bulb_stull(dry_bulb, relative_humidity(dry_bulb, np.minimum(dew_point, dry_bulb)))
