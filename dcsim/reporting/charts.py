"""PNG charts of one run, drawn from its saved result only, plus helpers shared with the other charts.

Charts read the RunResult frames (never the live model), so a result reloaded from disk draws the
same charts. Timeseries rows are piecewise-constant levels; long series are reduced to time-weighted
bin averages so the chart stays readable and fast to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from dcsim.reporting.drawing import Chart, draw, save
from dcsim.results import RunResult

MAX_ROWS = 5000  # above this many timeseries rows, plot time-weighted bin averages
BINS = 500
LEGEND_ABOVE: dict[str, Any] = {"loc": "lower right", "bbox_to_anchor": (1.0, 1.0), "ncol": 2, "fontsize": 8,
                                "frameon": False}  # beside a left-aligned title, never over the data
GANTT_MAX_JOBS = 300  # default of reporting.gantt_max_jobs

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


def capacity(result: RunResult) -> dict[str, float | None]:
    """Accelerators per model from summary.json's `cluster` section; None if the result lacks it."""
    known = (result.summary.get("cluster") or {}).get("accelerators") or {}
    return {model: float(known[model]) if model in known else None for model in accelerator_models(result)}


def time_axis(ax: Axes, ts: pd.DataFrame, scale: float, unit: str) -> None:
    """Simulated time from zero to the last row (a unit-wide axis when the run has no duration)."""
    end = float(ts["time_s"].max()) if len(ts) else 0.0
    ax.set_xlim(0, end / scale if end > 0 else 1)
    ax.set_xlabel(f"simulated time ({unit})")


def finish_time_chart(fig: Figure, ax: Axes, ts: pd.DataFrame, scale: float, unit: str, ylabel: str, title: str,
                      path: Path, title_loc: Literal["left", "center", "right"] = "left") -> Path:
    """The ending every single-axis chart over simulated time shares: axis, labels, grid, save."""
    time_axis(ax, ts, scale, unit)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc=title_loc)
    ax.grid(alpha=0.3)
    return save(fig, path)


def model_colors(models: Sequence[str]) -> dict[str, Any]:
    cmap = matplotlib.colormaps["tab10"]
    return {model: cmap(i % 10) for i, model in enumerate(models)}


def ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ordered = np.sort(values)
    return ordered, np.arange(1, ordered.size + 1) / ordered.size


def no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def finite(values: pd.Series) -> np.ndarray:
    array = values.to_numpy(dtype=float)
    return array[np.isfinite(array)]


# --- one run --------------------------------------------------------------------------------------
def write_run_charts(result: RunResult, folder: Path) -> list[Path]:
    """Write utilization, queue, wait/JCT CDF, power and (small runs only) Gantt PNGs into `folder`."""
    return draw(run_charts(result), folder)


def run_charts(result: RunResult) -> list[Chart]:
    """The cluster and training charts of `result`, not yet drawn (inference ones: inference_charts).

    A run that served inference and had no training jobs gets no queue, wait/JCT CDF or Gantt chart:
    they would only say "no jobs". Each chart reads the frames when drawn, so bad data fails only the
    chart that needs it.
    """
    charts: list[Chart] = [("utilization.png", lambda path: _utilization(result, path, *_timing(result)[1:]))]
    training = len(result.jobs) > 0 or result.requests is None
    if training:
        charts += [("queue.png", lambda path: _queue(result.timeseries, path, *_timing(result)[1:])),
                   ("wait_jct_cdf.png", lambda path: _wait_jct(result.jobs, path))]
    charts.append(("power.png", lambda path: _power(result.timeseries, path, *_timing(result)[1:])))
    if len(result.jobs):
        charts.append(("gantt.png", lambda path: _gantt_of(result, path)))
    return charts


def chart_notes(result: RunResult) -> list[str]:
    """One sentence per chart that the report leaves out on purpose, saying why (for report.html)."""
    notes = []
    if result.jobs.empty and result.requests is not None:
        notes.append("Queue, wait/JCT CDF and Gantt charts left out: the run had no training jobs.")
    reason = _gantt_jobs(result)[1]
    if reason:
        notes.append(f"Gantt chart left out: {reason}.")
    return notes


def _timing(result: RunResult) -> tuple[float, float, str]:
    """End of the run (summary sim_time_s, else the last timeseries row) and its time_unit."""
    ts = result.timeseries
    end = float(result.summary.get("sim_time_s") or (ts["time_s"].max() if len(ts) else 0.0))
    return (end, *time_unit(end))


def _gantt_jobs(result: RunResult) -> tuple[pd.DataFrame | None, str]:
    """The started jobs the Gantt chart draws, or None and why it is left out ("" without jobs)."""
    jobs = result.jobs
    if jobs.empty or "start_s" not in jobs:
        return None, ""
    started = jobs[np.isfinite(jobs["start_s"].to_numpy(dtype=float))]
    limit = int((result.scenario.get("reporting") or {}).get("gantt_max_jobs", GANTT_MAX_JOBS))
    if started.empty:
        return None, "no job started"
    if len(started) > limit:
        return None, f"{len(started):,} started jobs > reporting.gantt_max_jobs={limit}"
    return started, ""


def _gantt_of(result: RunResult, path: Path) -> Path | None:
    started = _gantt_jobs(result)[0]
    if started is None:
        return None
    return _gantt(started, accelerator_models(result), *_timing(result), path, result.job_segments)


def _utilization(result: RunResult, path: Path, scale: float, unit: str) -> Path:
    models = accelerator_models(result)
    caps = capacity(result)
    colors = model_colors(models)
    fig = Figure(figsize=(10, 1.2 + 1.9 * max(len(models), 1)))
    axes = fig.subplots(max(len(models), 1), 1, sharex=True, squeeze=False)
    if not models or result.timeseries.empty:
        no_data(axes[0, 0], "no accelerators recorded")
    for ax, model in zip(axes[:, 0], models, strict=False):
        times, values = levels(result.timeseries, [f"allocated_{model}", f"busy_{model}"])
        peak = float(result.timeseries[f"allocated_{model}"].max())  # unbinned, the true peak
        cap = caps[model] or max(peak, 1.0)  # unknown capacity: scale to the peak allocation
        values = values / cap
        ax.fill_between(times / scale, values[:, 0], step="post", color=colors[model], alpha=0.25,
                        label="allocated")
        ax.step(times / scale, values[:, 1], where="post", color=colors[model], lw=1.2, label="busy")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("fraction")
        known = f"{cap:.0f} accelerators" if caps[model] else f"capacity unknown, scaled to peak {cap:.0f}"
        ax.set_title(f"{model} ({known})", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        ax.legend(**LEGEND_ABOVE)
    time_axis(axes[-1, 0], result.timeseries, scale, unit)
    fig.suptitle("Accelerator utilization: allocated and busy fraction of capacity")
    return save(fig, path)


def _queue(ts: pd.DataFrame, path: Path, scale: float, unit: str) -> Path:
    fig = Figure(figsize=(10, 3.2))
    ax = fig.subplots()
    if ts.empty:
        no_data(ax, "no timeseries")
    else:
        times, values = levels(ts, ["queue_length"])
        ax.step(times / scale, values[:, 0], where="post", color="tab:purple", lw=1.2)
        ax.fill_between(times / scale, values[:, 0], step="post", color="tab:purple", alpha=0.15)
        ax.set_ylim(bottom=0)
    return finish_time_chart(fig, ax, ts, scale, unit, "jobs waiting", "Queue length", path, title_loc="center")


def cdf_plot(ax: Axes, series: dict[str, np.ndarray], xlabel: str, colors: Sequence[Any],
             noun: str = "jobs") -> float:
    """Empirical CDF step lines on one axis; log-x (zeros pinned to the left edge) past 2 decades.

    Returns the divisor applied to the values (see time_unit), so callers can add marks such as SLO
    targets in the same units; 1.0 when nothing was drawn. `noun` names what was counted.
    """
    series = {label: values for label, values in series.items() if values.size}
    if not series:
        no_data(ax, f"no {noun} with a value")
        return 1.0
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
    ax.set_ylabel(f"fraction of {noun}")
    ax.set_ylim(0, 1.02)
    if not log:
        ax.set_xlim(left=0)  # durations: no negative axis, even when every value is 0
    ax.grid(alpha=0.3, which="major")
    return scale


def _wait_jct(jobs: pd.DataFrame, path: Path) -> Path:
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    if jobs.empty:  # also covers a frame without columns
        for ax in axes:
            no_data(ax, "no training jobs")
        fig.suptitle("Empirical CDFs of wait and job completion time")
        return save(fig, path)
    cdf_plot(axes[0], {"started jobs": finite(jobs["wait_s"])}, "wait", ["tab:orange"])
    axes[0].set_title("Wait (submit to start)")
    cdf_plot(axes[1], {"completed jobs": finite(jobs["jct_s"])}, "JCT", ["tab:blue"])
    axes[1].set_title("Job completion time (submit to end)")
    fig.suptitle("Empirical CDFs of wait and job completion time")
    return save(fig, path)


def _power(ts: pd.DataFrame, path: Path, scale: float, unit: str) -> Path:
    fig = Figure(figsize=(10, 3.5))
    ax = fig.subplots()
    if ts.empty:
        no_data(ax, "no timeseries")
    else:
        times, values = levels(ts, ["power_facility_w", "power_it_w"])
        ax.step(times / scale, values[:, 0] / 1e3, where="post", color="tab:red", lw=1.2,
                label="facility (IT x PUE)")
        ax.step(times / scale, values[:, 1] / 1e3, where="post", color="tab:gray", lw=1.0, label="IT")
        ax.set_ylim(bottom=0)
        ax.legend(**LEGEND_ABOVE)
    return finish_time_chart(fig, ax, ts, scale, unit, "power (kW)", "Power draw", path)


def _gantt(jobs: pd.DataFrame, models: list[str], end: float, scale: float, unit: str, path: Path,
           segments: pd.DataFrame | None = None) -> Path:
    """One row per started job: a thin bar while it waits, a solid one while it holds accelerators. With
    the job_segments frame (preemptive runs) the solid part is drawn phase by phase: computing, starting
    or restoring (lighter), and suspending to a checkpoint (dark); the gaps are waits in the queue."""
    jobs = jobs.sort_values(["start_s", "job_id"]).reset_index(drop=True)
    present = [*models, *sorted(set(jobs["accelerator_model"].astype(str)) - set(models))]
    colors = model_colors(present)
    fig = Figure(figsize=(10, min(2.5 + 0.04 * len(jobs), 14)))
    ax = fig.subplots()
    rows = np.arange(len(jobs))
    start = jobs["start_s"].to_numpy(dtype=float)
    ends = jobs["end_s"].to_numpy(dtype=float)
    unfinished = ~np.isfinite(ends)
    stop = np.where(unfinished, end, ends)
    submit = jobs["submit_s"].to_numpy(dtype=float)
    color = [colors[str(m)] for m in jobs["accelerator_model"]]
    phased = segments is not None and not segments.empty
    if phased:
        assert segments is not None
        ax.add_collection(_bars(submit / scale, stop / scale, rows, 0.3, color, alpha=0.3))
        _phase_bars(ax, segments, dict(zip(jobs["job_id"].tolist(), rows.tolist(), strict=True)), colors, scale)
    else:
        ax.add_collection(_bars(submit / scale, start / scale, rows, 0.3, color, alpha=0.3))
        ax.add_collection(_bars(start / scale, stop / scale, rows, 0.8, color, alpha=1.0))
    if unfinished.any():
        ax.scatter(stop[unfinished] / scale, rows[unfinished], marker=">", s=12, color="black", zorder=3,
                   clip_on=False)
    used = set(jobs["accelerator_model"].astype(str))
    handles: list[Artist] = [Patch(color=colors[m], label=m) for m in present if m in used]
    if phased:
        assert segments is not None
        phases = set(segments["phase"].astype(str))
        if phases & {"starting", "restoring"}:
            handles.append(Patch(color="0.6", alpha=0.55, label="starting / restoring"))
        if "suspending" in phases:
            handles.append(Patch(color=SUSPENDING_COLOR, label="suspending (checkpoint)"))
        handles.append(Patch(color="0.6", alpha=0.3, label="waiting"))
    else:
        handles.append(Patch(color="0.6", alpha=0.3, label="waiting (submit to start)"))
    if unfinished.any():
        handles.append(Line2D([], [], marker=">", color="black", lw=0, label="unfinished at end"))
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), fontsize=8,
              frameon=False)
    ax.set_ylim(len(jobs) - 0.5, -0.5)
    ax.set_xlim(min(0.0, float(submit.min()) / scale), max(end, float(stop.max()), 1.0) / scale)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel(f"job (by start time, {len(jobs)} jobs)")
    fig.suptitle("Jobs over time, colored by accelerator model")
    ax.grid(alpha=0.3, axis="x")
    return save(fig, path)


SUSPENDING_COLOR = "0.15"


def _phase_bars(ax: Axes, segments: pd.DataFrame, row_of: dict[int, int], colors: dict[str, Any],
                scale: float) -> None:
    """The segments of the drawn jobs, one collection per kind of phase."""
    drawn = segments[segments["job_id"].isin(row_of)]
    rows = np.array([row_of[int(j)] for j in drawn["job_id"]], dtype=float)
    left = drawn["start_s"].to_numpy(dtype=float) / scale
    right = drawn["end_s"].to_numpy(dtype=float) / scale
    model_color = [colors.get(str(m), "0.5") for m in drawn["accelerator_model"]]
    phase = drawn["phase"].to_numpy(dtype=str)
    for kinds, alpha in ((("computing",), 1.0), (("starting", "restoring"), 0.55)):
        mask = np.isin(phase, kinds)
        ax.add_collection(_bars(left[mask], right[mask], rows[mask], 0.8,
                                [c for c, m in zip(model_color, mask, strict=True) if m], alpha=alpha))
    mask = phase == "suspending"
    ax.add_collection(_bars(left[mask], right[mask], rows[mask], 0.8, [SUSPENDING_COLOR] * int(mask.sum()),
                            alpha=0.9))


def _bars(left: np.ndarray, right: np.ndarray, rows: np.ndarray, height: float, colors: list[Any],
          alpha: float) -> PolyCollection:
    """Horizontal bars as one collection: hundreds of separate patches make the Gantt slow."""
    low, high = rows - height / 2, rows + height / 2
    corners = ((left, low), (left, high), (right, high), (right, low))
    verts = np.stack([np.column_stack(corner) for corner in corners], axis=1)  # (bars, 4, 2)
    return PolyCollection(list(verts), facecolors=colors, alpha=alpha, linewidths=0)
