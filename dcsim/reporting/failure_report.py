"""The failures section of a report: its tables, the failures-over-time chart and ETTR by job size.

Drawn from failures.csv (one row per component failure) and the `failures` section of summary.json.
Accelerators down are the nominal outages: from each failure until its component is back (after
a repair, or a spare's swap).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dcsim.reporting.charts import LEGEND_ABOVE, time_unit
from dcsim.reporting.drawing import Chart, save
from dcsim.reporting.format import esc, number, percent, table
from dcsim.results import RunResult

FAILURE_CAPTIONS = {
    "failures_over_time": "Accelerators out of service over time (from each failure until its component is back) "
                          "and the failures themselves, marked by component class.",
    "ettr_by_job_size": "Effective training time ratio (kept computing over accelerator-time from first start to "
                        "end) of jobs grouped by size.",
}


def failure_tables(s: Mapping[str, Any]) -> str:
    f = s.get("failures")
    if not isinstance(f, Mapping):
        return ""
    rows = [["component failures", esc(number(f.get("failures")))],
            ["per 1,000 accelerator-days", esc(number(f.get("failures_per_1000_accelerator_days")))],
            ["job interruptions", esc(number(f.get("job_interruptions")))],
            ["interruptions per 1,000 held accelerator-days",
             esc(number(f.get("interruptions_per_1000_accelerator_days")))],
            ["ETTR (effective training time ratio)", esc(percent(f.get("ettr")))],
            ["goodput (kept computing over fleet time)", esc(percent(f.get("goodput")))],
            ["lost accelerator-hours", esc(number(f.get("lost_accelerator_hours")))],
            ["checkpoints written", esc(number(f.get("checkpoints")))],
            ["checkpoint accelerator-hours", esc(number(f.get("checkpoint_accelerator_hours")))],
            ["accelerator availability", esc(percent(f.get("accelerator_availability")))],
            ["spares used", esc(number(f.get("spares_used")))]]
    serving = f.get("serving")
    if isinstance(serving, Mapping):
        rows += [[esc(key.replace("_", " ")), esc(number(value))] for key, value in serving.items()]
    causes = f.get("by_cause")
    lost = f.get("lost_accelerator_hours_by_cause") or {}
    cause_rows = [[esc(cause), esc(number(count)), esc(number(lost.get(cause, 0.0)))]
                  for cause, count in causes.items()] if isinstance(causes, Mapping) else []
    by_cause = table(["cause", "failures", "lost accelerator-hours"], cause_rows, "by cause") if cause_rows else ""
    return f"<h2>Failures</h2>{table(['', ''], rows)}{by_cause}"


def failure_charts(result: RunResult) -> list[Chart]:
    failures = result.failures
    if failures is None or "failures" not in result.summary:
        return []
    return [("failures_over_time.png", lambda path: _over_time(result, failures, path)),
            ("ettr_by_job_size.png", lambda path: _ettr(result, path))]


def down_levels(failures: pd.DataFrame, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Accelerators out of service as a step function: (times, level from each time on)."""
    starts = failures["time_s"].to_numpy(dtype=float)
    backs = np.minimum(failures["back_s"].to_numpy(dtype=float), end)
    counts = failures["accelerators_down"].to_numpy(dtype=float)
    times = np.concatenate([[0.0], starts, backs])
    deltas = np.concatenate([[0.0], counts, -counts])
    order = np.argsort(times, kind="stable")
    return times[order], np.cumsum(deltas[order])


def _over_time(result: RunResult, failures: pd.DataFrame, path: Path) -> Path:
    end = float(result.summary.get("sim_time_s") or 0.0)
    scale, unit = time_unit(end)
    times, levels = down_levels(failures, end)
    fig = Figure(figsize=(10, 3.8))
    ax = fig.subplots()
    ax.step(np.append(times, end) / scale, np.append(levels, levels[-1:]), where="post", color="C3",
            label="accelerators out of service")
    marks = ax.twinx()
    for index, (component, rows) in enumerate(failures.groupby("component", sort=True)):
        marks.plot(rows["time_s"] / scale, np.arange(1, len(rows) + 1), ".", color=f"C{index}", ms=3,
                   label=f"{component} failures (cumulative)")
    ax.set_xlim(0, end / scale if end > 0 else 1.0)
    ax.set_ylim(bottom=0)
    marks.set_ylim(bottom=0)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("accelerators out of service")
    marks.set_ylabel("failures so far")
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = marks.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, **LEGEND_ABOVE)
    ax.grid(alpha=0.3)
    return save(fig, path)


def _ettr(result: RunResult, path: Path) -> Path:
    by_size = result.summary["failures"].get("ettr_by_job_size") or {}
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    labels = list(by_size)
    ax.bar(labels, [100 * float(value) for value in by_size.values()], color="C0")
    ax.set_ylim(0, 100)
    ax.set_xlabel("job size (accelerators)")
    ax.set_ylabel("ETTR (%)")
    ax.grid(alpha=0.3, axis="y")
    return save(fig, path)
