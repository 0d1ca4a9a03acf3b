"""What every fitted model shares: error statistics, the too-few-points guard, and overlay merging.

Calibration has provenance (DESIGN rule 9): each fitted model keeps a list of FitError records, one
per way it was checked (in-sample fit, leave-one-out cross-validation, comparison with an independent
dataset), so `dcsim calibration report` can print them and tests can bound them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dcsim.errors import CalibrationError


@dataclass(frozen=True)
class FitError:
    """Absolute percentage error of predictions against measurements, summarised."""

    model: str  # which fitted model, e.g. "training" or "inference.decode"
    check: str  # "fit" (in-sample), "cv: leave one accelerator out", "check: ML.ENERGY ITL", ...
    points: int
    median_ape: float  # percent
    mape: float  # percent
    worst_ape: float  # percent
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value != ""}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FitError:
        return cls(**raw)

    def line(self) -> str:
        text = (f"{self.model:<22} {self.check:<40} n={self.points:<5} median {self.median_ape:6.1f}%  "
                f"mean {self.mape:6.1f}%  worst {self.worst_ape:7.1f}%")
        return f"{text}  ({self.note})" if self.note else text


def ape_stats(model: str, check: str, predicted: Iterable[float], measured: Iterable[float],
              note: str = "") -> FitError:
    """Summarise |predicted - measured| / measured in percent; needs at least one point."""
    pred = np.asarray(list(predicted), dtype=float)
    meas = np.asarray(list(measured), dtype=float)
    if pred.shape != meas.shape:
        raise ValueError(f"{len(pred)} predictions for {len(meas)} measurements")
    if len(meas) == 0:
        raise CalibrationError(f"{model}: {check}: no points to compare")
    ape = np.abs(pred - meas) / np.abs(meas) * 100.0
    return FitError(model=model, check=check, points=len(ape), median_ape=_round(np.median(ape)),
                    mape=_round(np.mean(ape)), worst_ape=_round(np.max(ape)), note=note)


def require_points(count: int, minimum: int, what: str) -> None:
    """Refuse a fit with too few points instead of returning garbage coefficients."""
    if count < minimum:
        raise CalibrationError(f"cannot fit {what}: {count} measurement point{'s' if count != 1 else ''}, "
                               f"need at least {minimum}")


def merge_entries(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay entries replace base entries of the same key; other base entries stay."""
    merged = dict(base)
    merged.update(overlay)
    return merged


def _round(value: float) -> float:
    return float(f"{float(value):.4g}")
