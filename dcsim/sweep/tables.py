"""The sweep's tables from its records: one row per run, and the mean with a 95% CI per point.

Rows are ordered by point, then seed, whatever order the runs finished in, so the same sweep gives the
same tables on one machine or a Dask cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dcsim.stats import mean_ci
from dcsim.subsystems import headline_metrics
from dcsim.sweep.points import Task
from dcsim.sweep.spec import Point
from dcsim.sweep.task import Record

METRICS = ["accelerators", *headline_metrics()]  # per-run metrics, in table order
HIGHER_IS_BETTER = {"slo_attainment", "tokens_per_s", "busy_utilization", "allocated_utilization",
                    "jain_slowdown"}
RUN_COLUMNS = ["point", "seed", "status", "error", "wall_s", "key"]


def cell(value: Any) -> Any:
    """A parameter value as a table cell: lists and mappings as their JSON text."""
    return json.dumps(value) if isinstance(value, list | dict) else value


def runs_frame(points: Sequence[Point], tasks: Sequence[Task], records: Mapping[str, Record]) -> pd.DataFrame:
    """Parameters, seed, status and metrics of every finished run of this sweep (missing runs left out)."""
    rows = []
    for task in tasks:
        record = records.get(task.key)
        if record is None:
            continue
        row: dict[str, Any] = {"point": task.point}
        row.update({key: cell(value) for key, value in points[task.point].items()})
        row.update(seed=task.seed, status=record.get("status"), error=record.get("error"),
                   wall_s=record.get("wall_s"), key=task.key)
        metrics = record.get("metrics") or {}
        row.update({name: metrics.get(name) for name in METRICS})
        rows.append(row)
    params = list(points[0]) if points else []
    frame = pd.DataFrame(rows, columns=["point", *params, *RUN_COLUMNS[1:], *METRICS])
    for param in params:  # values of several types (8 and "auto") as text: one type per column for parquet
        kinds = {float if type(value) is int else type(value) for value in frame[param] if value is not None}
        if len(kinds) > 1:
            frame[param] = [None if value is None else str(value) for value in frame[param]]
    for name in METRICS:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    present = [name for name in METRICS if frame[name].notna().any()]
    return frame[["point", *params, *RUN_COLUMNS[1:], *present]]


def metric_columns(runs: pd.DataFrame) -> list[str]:
    return [name for name in METRICS if name in runs.columns]


def summary_frame(points: Sequence[Point], runs: pd.DataFrame) -> pd.DataFrame:
    """Per point: its parameters, runs ok and failed, and per metric the mean and 95% CI half-width."""
    metrics = metric_columns(runs)
    rows = []
    for index, point in enumerate(points):
        mine = runs[runs["point"] == index]
        ok = mine[mine["status"] == "ok"]
        row: dict[str, Any] = {"point": index, **{key: cell(value) for key, value in point.items()},
                               "runs": len(ok), "failed": int((mine["status"] == "failed").sum())}
        for metric in metrics:
            mean, half, _ = mean_ci(ok[metric].to_numpy(dtype=float))
            row[f"{metric}_mean"] = mean
            row[f"{metric}_ci95"] = half
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_mask(x: np.ndarray, y: np.ndarray, x_higher: bool, y_higher: bool) -> np.ndarray:
    """Which (x, y) are not dominated: no other point at least as good in both and better in one."""
    xs = x if x_higher else -x
    ys = y if y_higher else -y
    keep = np.zeros(len(x), dtype=bool)
    for i in range(len(x)):
        if np.isnan(xs[i]) or np.isnan(ys[i]):
            continue
        dominated = (xs >= xs[i]) & (ys >= ys[i]) & ((xs > xs[i]) | (ys > ys[i]))
        keep[i] = not dominated.any()
    return keep
