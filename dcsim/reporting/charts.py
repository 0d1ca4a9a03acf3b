"""PNG charts of one run and of a policy comparison, drawn from saved results only.

Charts read the RunResult frames (never the live model), so a result reloaded from disk draws the
same charts. Timeseries rows are piecewise-constant levels; long series are reduced to time-weighted
bin averages so the chart stays readable and fast to draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy import stats as scipy_stats

from dcsim.results import RunResult

DPI = 110
MAX_ROWS = 5000  # above this many timeseries rows, plot time-weighted bin averages
BINS = 500
LEGEND_ABOVE: dict[str, Any] = {"loc": "lower right", "bbox_to_anchor": (1.0, 1.0), "ncol": 2, "fontsize": 8,
                                "frameon": False}  # beside a left-aligned title, never over the data


# --- helpers --------------------------------------------------------------------------------------
def time_unit(seconds: float) -> tuple[float, str]:
    """Divisor and label for a time axis: hours beyond 2 h, minutes beyond 2 min, else seconds."""
    if seconds > 7200:
        return 3600.0, "h"
    if seconds > 120:
        return 60.0, "min"
    return 1.0, "s"


def binned_levels(times: np.ndarray, values: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Time-weighted mean of piecewise-constant `values` (rows x series) over equal time bins."""
    edges = np.linspace(times[0], times[-1], bins + 1)
    widths = np.diff(times)
    cumulative = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values[:-1] * widths[:, None], axis=0)])
    index = np.clip(np.searchsorted(times, edges, side="right") - 1, 0, len(times) - 1)
    integral = cumulative[index] + values[index] * (edges - times[index])[:, None]
    means = np.diff(integral, axis=0) / np.diff(edges)[:, None]
    return edges, np.vstack([means, means[-1:]])  # the repeated last row closes the final step


def levels(ts: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Times and values of `columns`, binned when the series is long."""
    times = ts["time_s"].to_numpy(dtype=float)
    values = ts[list(columns)].to_numpy(dtype=float).reshape(len(ts), len(columns))
    if len(ts) > MAX_ROWS and times[-1] > times[0]:
        return binned_levels(times, values)
    return times, values


def accelerator_models(result: RunResult) -> list[str]:
    """Models in timeseries column order (allocated_<model>), the order every chart uses."""
    return [c.removeprefix("allocated_") for c in result.timeseries.columns
            if c.startswith("allocated_") and c != "allocated_all"]


def capacity(result: RunResult) -> dict[str, float]:
    """Accelerators per model: recorded capacity, else node pools, else derived from the summary."""
    models = accelerator_models(result)
    recorded = result.extra.get("capacity") or {}
    pools: dict[str, float] = {}
    for pool in (result.scenario.get("cluster") or {}).get("node_pools") or []:
        name = str(pool.get("accelerator"))
        size = float(pool.get("count", 0)) * float(pool.get("accelerators_per_node", 0))
        pools[name] = pools.get(name, 0.0) + size
    util = (result.summary.get("utilization") or {}).get("allocated") or {}
    ts, sim_time = result.timeseries, float(result.summary.get("sim_time_s") or 0.0)
    out = {}
    for model in models:
        allocated = ts[f"allocated_{model}"].to_numpy(dtype=float)
        if model in recorded:
            out[model] = float(recorded[model])
        elif model in pools:
            out[model] = pools[model]
        elif util.get(model) and sim_time > 0 and len(ts) > 1:  # summary = time-mean / capacity
            weights = np.diff(ts["time_s"].to_numpy(dtype=float), append=ts["time_s"].iloc[-1])
            out[model] = float(round(float(np.dot(allocated, weights)) / sim_time / float(util[model])))
        else:
            out[model] = 0.0
        out[model] = max(out[model], float(allocated.max()) if len(allocated) else 0.0, 1.0)
    return out


def model_colors(models: Sequence[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {model: cmap(i % 10) for i, model in enumerate(models)}


def ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ordered = np.sort(values)
    return ordered, np.arange(1, ordered.size + 1) / ordered.size


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def finite(values: pd.Series) -> np.ndarray:
    array = values.to_numpy(dtype=float)
    return array[np.isfinite(array)]


# --- one run --------------------------------------------------------------------------------------
def write_run_charts(result: RunResult, folder: Path) -> list[Path]:
    """Write utilization, queue, wait/JCT CDF, power and (small runs only) Gantt PNGs into `folder`."""
    folder = Path(folder)
    ts = result.timeseries
    end = float(result.summary.get("sim_time_s") or (ts["time_s"].max() if len(ts) else 0.0))
    scale, unit = time_unit(end)
    paths = [
        _utilization(result, folder / "utilization.png", scale, unit),
        _queue(ts, folder / "queue.png", scale, unit),
        _wait_jct(result.jobs, folder / "wait_jct_cdf.png"),
        _power(ts, folder / "power.png", scale, unit),
    ]
    started = result.jobs[np.isfinite(result.jobs["start_s"].to_numpy(dtype=float))]
    limit = int((result.scenario.get("reporting") or {}).get("gantt_max_jobs", 300))
    if 0 < len(started) <= limit:
        paths.append(_gantt(started, accelerator_models(result), end, folder / "gantt.png", scale, unit))
    return paths


def _utilization(result: RunResult, path: Path, scale: float, unit: str) -> Path:
    models = accelerator_models(result)
    caps = capacity(result)
    colors = model_colors(models)
    fig, axes = plt.subplots(max(len(models), 1), 1, figsize=(10, 1.2 + 1.9 * max(len(models), 1)),
                             sharex=True, squeeze=False)
    if not models or result.timeseries.empty:
        no_data(axes[0, 0], "no accelerators recorded")
    for ax, model in zip(axes[:, 0], models, strict=False):
        times, values = levels(result.timeseries, [f"allocated_{model}", f"busy_{model}"])
        values = values / caps[model]
        ax.fill_between(times / scale, values[:, 0], step="post", color=colors[model], alpha=0.25,
                        label="allocated")
        ax.step(times / scale, values[:, 1], where="post", color=colors[model], lw=1.2, label="busy")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("fraction")
        ax.set_title(f"{model} ({caps[model]:.0f} accelerators)", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        ax.legend(**LEGEND_ABOVE)
    axes[-1, 0].set_xlabel(f"simulated time ({unit})")
    fig.suptitle("Accelerator utilization: allocated and busy fraction of capacity")
    fig.tight_layout()
    return save(fig, path)


def _queue(ts: pd.DataFrame, path: Path, scale: float, unit: str) -> Path:
    fig, ax = plt.subplots(figsize=(10, 3.2))
    if ts.empty:
        no_data(ax, "no timeseries")
    else:
        times, values = levels(ts, ["queue_length"])
        ax.step(times / scale, values[:, 0], where="post", color="tab:purple", lw=1.2)
        ax.fill_between(times / scale, values[:, 0], step="post", color="tab:purple", alpha=0.15)
        ax.set_ylim(bottom=0)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("jobs waiting")
    ax.set_title("Queue length")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def cdf_plot(ax: Axes, series: dict[str, np.ndarray], xlabel: str, colors: Sequence[Any]) -> None:
    """Empirical CDF step lines on one axis; log-x (zeros pinned to the left edge) past 2 decades."""
    series = {label: values for label, values in series.items() if values.size}
    if not series:
        no_data(ax, "no jobs with a value")
        return
    scale, unit = time_unit(max(float(values.max()) for values in series.values()))
    everything = np.concatenate(list(series.values())) / scale
    positive = everything[everything > 0]
    log = bool(positive.size) and positive.max() / positive.min() > 100
    left = positive.min() / 2 if log else 0.0
    if log:
        ax.set_xscale("log")
        ax.set_xlim(left, positive.max() * 1.5)
    for (label, values), color in zip(series.items(), colors, strict=False):
        scaled = values / scale
        zero = float(np.mean(scaled <= 0))
        note = f", {zero:.0%} at 0" if log and zero > 0 else ""
        x, y = ecdf(np.maximum(scaled, left))
        ax.step(np.concatenate([[x[0]], x]), np.concatenate([[0.0], y]), where="post", color=color, lw=1.5,
                label=f"{label} (n={values.size}{note})")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(f"{xlabel} ({unit}{', log scale' if log else ''})")
    ax.set_ylabel("fraction of jobs")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="major")


def _wait_jct(jobs: pd.DataFrame, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    cdf_plot(axes[0], {"started jobs": finite(jobs["wait_s"])}, "wait", ["tab:orange"])
    axes[0].set_title("Wait (submit to start)")
    cdf_plot(axes[1], {"completed jobs": finite(jobs["jct_s"])}, "JCT", ["tab:blue"])
    axes[1].set_title("Job completion time (submit to end)")
    fig.suptitle("Empirical CDFs of wait and job completion time")
    fig.tight_layout()
    return save(fig, path)


def _power(ts: pd.DataFrame, path: Path, scale: float, unit: str) -> Path:
    fig, ax = plt.subplots(figsize=(10, 3.5))
    if ts.empty:
        no_data(ax, "no timeseries")
    else:
        times, values = levels(ts, ["power_facility_w", "power_it_w"])
        ax.step(times / scale, values[:, 0] / 1e3, where="post", color="tab:red", lw=1.2,
                label="facility (IT x PUE)")
        ax.step(times / scale, values[:, 1] / 1e3, where="post", color="tab:gray", lw=1.0, label="IT")
        ax.set_ylim(bottom=0)
        ax.legend(**LEGEND_ABOVE)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("power (kW)")
    ax.set_title("Power draw", loc="left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path)


def _gantt(jobs: pd.DataFrame, models: list[str], end: float, path: Path, scale: float, unit: str) -> Path:
    jobs = jobs.sort_values(["start_s", "job_id"]).reset_index(drop=True)
    present = [*models, *sorted(set(jobs["accelerator_model"].astype(str)) - set(models))]
    colors = model_colors(present)
    fig, ax = plt.subplots(figsize=(10, min(2.5 + 0.04 * len(jobs), 14)))
    rows = np.arange(len(jobs))
    start = jobs["start_s"].to_numpy(dtype=float)
    ends = jobs["end_s"].to_numpy(dtype=float)
    unfinished = ~np.isfinite(ends)
    stop = np.where(unfinished, end, ends)
    submit = jobs["submit_s"].to_numpy(dtype=float)
    color = [colors[str(m)] for m in jobs["accelerator_model"]]
    ax.barh(rows, (start - submit) / scale, left=submit / scale, height=0.3, color=color, alpha=0.3, lw=0)
    ax.barh(rows, (stop - start) / scale, left=start / scale, height=0.8, color=color, lw=0)
    if unfinished.any():
        ax.scatter(stop[unfinished] / scale, rows[unfinished], marker=">", s=12, color="black", zorder=3)
    used = set(jobs["accelerator_model"].astype(str))
    handles = [Patch(color=colors[m], label=m) for m in present if m in used]
    handles.append(Patch(color="0.6", alpha=0.3, label="waiting (submit to start)"))
    if unfinished.any():
        handles.append(Patch(color="black", label="unfinished at end (▶)"))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), fontsize=8,
              frameon=False)
    ax.set_ylim(len(jobs) - 0.5, -0.5)
    ax.set_xlim(left=min(0.0, float(submit.min()) / scale), right=end / scale if end > 0 else None)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel(f"job (by start time, {len(jobs)} jobs)")
    fig.suptitle("Jobs over time, colored by accelerator model")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return save(fig, path)


# --- comparison -----------------------------------------------------------------------------------
def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95% Student-t half-width over seeds (NaN half-width for fewer than two values)."""
    if values.size == 0:
        return math.nan, math.nan
    if values.size == 1:
        return float(values[0]), math.nan
    t = float(scipy_stats.t.ppf(0.975, values.size - 1))
    half = t * float(values.std(ddof=1)) / math.sqrt(values.size)
    return float(values.mean()), half


def write_comparison_charts(
    table: pd.DataFrame, jobs_by_variant: dict[str, pd.DataFrame], folder: Path
) -> list[Path]:
    """Bar chart of every metric (mean over seeds, 95% CI) per variant, and the pooled wait CDFs."""
    folder = Path(folder)
    variants = [str(v) for v in dict.fromkeys(table["variant"])] if "variant" in table else []
    metrics = [str(c) for c in table.columns
               if c not in ("variant", "seed") and pd.api.types.is_numeric_dtype(table[c])]
    ncols = min(3, max(len(metrics), 1))
    nrows = max(math.ceil(len(metrics) / ncols), 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 0.6 + 2.9 * nrows), squeeze=False)
    if not metrics or not variants:
        no_data(axes[0, 0], "no metrics")
    colors = [plt.get_cmap("tab10")(i % 10) for i in range(len(variants))]
    for ax, metric in zip(axes.flat, metrics, strict=False):
        stats = [mean_ci(table.loc[table["variant"].astype(str) == v, metric].dropna().to_numpy(dtype=float))
                 for v in variants]
        means = np.array([s[0] for s in stats])
        halves = np.array([s[1] for s in stats])
        scale, unit = time_unit(float(np.nanmax(np.abs(means)))) if metric.endswith("_s") and np.isfinite(
            means).any() else (1.0, "")
        ax.bar(range(len(variants)), np.nan_to_num(means / scale), color=colors,
               yerr=np.where(np.isfinite(halves), halves / scale, 0.0), capsize=4, ecolor="black")
        ax.set_title(f"{metric.removesuffix('_s')} ({unit})" if unit else metric, fontsize=10)
        ax.set_xticks(range(len(variants)), [_short(v) for v in variants], rotation=20, ha="right",
                      fontsize=8)
        if (table[metric].dropna() >= 0).all():
            ax.set_ylim(bottom=0)  # a t-interval can reach below zero; the metric cannot
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(metrics):] if metrics else []:
        ax.set_visible(False)
    fig.suptitle("Policy comparison: mean over seeds with 95% confidence interval")
    fig.tight_layout()
    paths = [save(fig, folder / "comparison_metrics.png")]

    fig, ax = plt.subplots(figsize=(8, 4.5))
    pooled = {str(v): finite(j["wait_s"]) if "wait_s" in j else np.array([], dtype=float)
              for v, j in jobs_by_variant.items()}
    cdf_plot(ax, pooled, "wait", [plt.get_cmap("tab10")(i % 10) for i in range(len(pooled))])
    ax.set_title("Wait time CDF per variant (jobs pooled over seeds)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(save(fig, folder / "comparison_wait_cdf.png"))
    return paths


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
