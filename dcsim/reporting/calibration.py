"""Predicted-versus-measured chart of the calibration: one panel per model family."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

DPI = 110


def calibration_chart(predictions: pd.DataFrame) -> Figure:
    """Log-log scatter of predicted against measured values with the y = x line, per family."""
    families = sorted(predictions["family"].unique())
    columns = min(3, max(1, len(families)))
    rows = max(1, math.ceil(len(families) / columns))
    figure = Figure(figsize=(4.2 * columns, 3.8 * rows), dpi=DPI, layout="constrained")
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
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_title(f"{family}\nn={len(part)}, median APE {np.median(ape):.1f}%, worst {ape.max():.0f}%",
                     fontsize=9, loc="left")
        ax.set_xlabel("measured", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, frameon=False, ncol=2)
    for ax in axes[len(families):]:
        ax.set_visible(False)
    return figure


def write_calibration_report(predictions: pd.DataFrame, folder: Path) -> list[Path]:
    """Write predictions.csv and calibration.png into `folder` (created); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    table, chart = folder / "predictions.csv", folder / "calibration.png"
    predictions.to_csv(table, index=False, float_format="%.6g")
    calibration_chart(predictions).savefig(chart)
    return [table, chart]
