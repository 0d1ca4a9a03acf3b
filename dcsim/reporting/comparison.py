"""PNG charts of a policy comparison: headline metrics with confidence intervals, pooled wait CDFs.

Input is the comparison table (one row per variant and seed) and each variant's jobs, not RunResults,
so a comparison can be redrawn from its saved CSV files.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dcsim.reporting.charts import cdf_plot, finite, no_data, time_unit
from dcsim.reporting.drawing import Chart, ChartFiles, draw_each, save
from dcsim.stats import mean_ci


def write_comparison_charts(
    table: pd.DataFrame, jobs_by_variant: dict[str, pd.DataFrame], folder: Path,
    requests_by_variant: dict[str, pd.DataFrame] | None = None,
) -> ChartFiles:
    """Bar chart of every metric (mean over seeds, 95% CI) per variant, and pooled wait (training) and
    latency (inference) CDFs.

    Each chart is drawn on its own: one that fails is named in the result's `failures` and the others
    (and the caller's CSV tables) are still written. Variant names are drawn literally.
    """
    charts: list[Chart] = [("comparison_metrics.png", lambda path: _metrics(table, path))]
    if any(len(j) for j in jobs_by_variant.values()) or not requests_by_variant:
        charts.append(("comparison_wait_cdf.png", lambda path: _pooled_cdf(
            jobs_by_variant, "wait_s", "wait", "Wait time CDF per variant (jobs pooled over seeds)", path)))
    if requests_by_variant:
        requests = requests_by_variant
        charts.append(("comparison_latency_cdf.png", lambda path: _pooled_cdf(
            requests, "e2e_s", "end-to-end latency", "Request latency CDF per variant (requests pooled over seeds)",
            path, noun="requests")))
    return draw_each([("comparison charts", lambda: charts)], Path(folder))


def _metrics(table: pd.DataFrame, path: Path) -> Path:
    variants = [str(v) for v in dict.fromkeys(table["variant"])] if "variant" in table else []
    metrics = [str(c) for c in table.columns
               if c not in ("variant", "seed") and pd.api.types.is_numeric_dtype(table[c])]
    ncols = min(3, max(len(metrics), 1))
    nrows = max(math.ceil(len(metrics) / ncols), 1)
    fig = Figure(figsize=(4 * ncols, 0.6 + 2.9 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    if not metrics or not variants:
        no_data(axes[0, 0], "no metrics")
    colors = [matplotlib.colormaps["tab10"](i % 10) for i in range(len(variants))]
    for ax, metric in zip(axes.flat, metrics, strict=False):
        stats = [mean_ci(table.loc[table["variant"].astype(str) == v, metric].dropna().to_numpy(dtype=float))
                 for v in variants]
        means = np.array([s[0] for s in stats])
        halves = np.array([s[1] for s in stats])
        scale, unit = time_unit(float(np.nanmax(np.abs(means)))) if metric.endswith("_s") and np.isfinite(
            means).any() else (1.0, "")
        ax.bar(range(len(variants)), np.nan_to_num(means / scale), color=colors)
        shown = np.isfinite(means) & np.isfinite(halves)  # no error bar from a single seed
        ax.errorbar(np.flatnonzero(shown), means[shown] / scale, yerr=halves[shown] / scale, fmt="none",
                    capsize=4, ecolor="black")
        for i in np.flatnonzero(~np.isfinite(means)):
            ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8, color="0.4")
        ax.set_title(f"{metric.removesuffix('_s')} ({unit})" if unit else metric, fontsize=10)
        ax.set_xticks(range(len(variants)), [_short(v) for v in variants], rotation=20, ha="right",
                      fontsize=8)
        if (table[metric].dropna() >= 0).all():
            ax.set_ylim(bottom=0)  # a t-interval can reach below zero; the metric cannot
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(metrics):] if metrics else []:
        ax.set_visible(False)
    fig.suptitle("Policy comparison: mean over seeds with 95% confidence interval")
    return save(fig, path)


def _pooled_cdf(frames: dict[str, pd.DataFrame], column: str, label: str, title: str, path: Path,
                noun: str = "jobs") -> Path:
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    pooled = {str(v): finite(f[column]) if column in f else np.array([], dtype=float) for v, f in frames.items()}
    cdf_plot(ax, pooled, label, [matplotlib.colormaps["tab10"](i % 10) for i in range(len(pooled))], noun=noun)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save(fig, path)


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
