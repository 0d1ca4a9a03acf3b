"""Predicted-versus-measured chart of the calibration: one panel per model family."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter

from dcsim.reporting.drawing import PlainLogFormatter, literal_text, save

# What each family's measured and predicted values are, with their unit (docs/calibration.md, CSV format).
QUANTITIES = {
    "inference decode": "decode iteration time (s)", "inference prefill": "prefill time (s)",
    "inference linear": "linear-layer forward time (s)", "power serving": "power per GPU (W)",
    "power cap power": "power per accelerator (W)", "power cap time": "time multiplier (x uncapped)",
}


def quantity(family: str) -> str:
    """Axis label of a family's values: training families are step times, the others as listed."""
    if family in QUANTITIES:
        return QUANTITIES[family]
    return "step time (s)" if family.startswith("training") else "value"


def calibration_chart(predictions: pd.DataFrame) -> Figure:
    """Log-log scatter of predicted against measured values with the y = x line, per family."""
    with literal_text():  # accelerator names in a user's measurements are user text
        return _chart(predictions)


def _chart(predictions: pd.DataFrame) -> Figure:
    families = sorted(predictions["family"].unique())
    columns = min(3, max(1, len(families)))
    rows = max(1, math.ceil(len(families) / columns))
    figure = Figure(figsize=(4.2 * columns, 3.9 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, family in zip(axes, families, strict=False):
        part = predictions[predictions["family"] == family]
        measured, predicted = part["measured"].to_numpy(float), part["predicted"].to_numpy(float)
        ape = np.abs(predicted - measured) / np.abs(measured) * 100
        for accelerator, group in part.groupby("accelerator"):
            ax.scatter(group["measured"], group["predicted"], s=8, alpha=0.6, label=str(accelerator))
        low = float(min(measured.min(), predicted.min()))
        high = float(max(measured.max(), predicted.max()))
        ax.plot([low, high], [low, high], color="black", linewidth=0.8)
        if low > 0:
            _log_axes(ax, low, high)
        ax.set_title(f"{family}\nn={len(part)}, median APE {np.median(ape):.1f}%, worst {ape.max():.0f}%",
                     fontsize=9, loc="left")
        ax.set_xlabel(f"measured {quantity(family)}", fontsize=8)
        ax.set_ylabel(f"predicted {quantity(family)}", fontsize=8)
        ax.tick_params(which="both", labelsize=7)
        ax.legend(fontsize=6, frameon=False, ncol=2)
    for ax in axes[len(families):]:
        ax.set_visible(False)
    return figure


def _log_axes(ax: Axes, low: float, high: float) -> None:
    """Log x and y over the same range (the y = x line is the diagonal) with few, plain tick labels.

    Matplotlib labels minor ticks when a range spans about a decade, and its labels (2x10^-1) overlap in
    a small panel; here a narrow range gets ticks at 1, 2 and 5 times powers of ten instead.
    """
    span = math.log10(high / low)
    subs = (1.0,) if span > 3 else (1.0, 3.0) if span > 1.5 else (1.0, 2.0, 5.0) if span > 0.7 else \
        (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
    margin = 10 ** (0.05 * max(span, 0.2))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low / margin, high * margin)
    ax.set_ylim(low / margin, high * margin)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(subs=subs, numticks=12))
        axis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(math.inf, math.inf)))
        axis.set_minor_formatter(NullFormatter())


def write_calibration_report(predictions: pd.DataFrame, folder: Path) -> list[Path]:
    """Write predictions.csv and calibration.png into `folder` (created); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    table, chart = folder / "predictions.csv", folder / "calibration.png"
    predictions.to_csv(table, index=False, float_format="%.6g")
    save(calibration_chart(predictions), chart)
    return [table, chart]
