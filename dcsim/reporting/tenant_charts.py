"""Per-tenant share of the accelerators over time, for runs whose jobs belong to tenants.

Drawn from the job_segments frame (every phase in which a job holds accelerators: starting,
restoring, computing, suspending) and the jobs' tenants, so it shows what each tenant held, set
against its guaranteed quota from the scenario.
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
from dcsim.results import RunResult


def tenant_charts(result: RunResult) -> list[Chart]:
    """The tenant share chart, when jobs name tenants and the run recorded their segments; else none."""
    segments = result.job_segments
    if segments is None or segments.empty or "tenant" not in result.jobs or not (result.jobs["tenant"] != "").any():
        return []
    return [("tenant_share.png", lambda path: _tenant_share(result, segments, path))]


def tenant_levels(jobs: pd.DataFrame, segments: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Change times and, per tenant, the accelerators it holds from each time until the next."""
    tenant_of = dict(zip(jobs["job_id"].tolist(), jobs["tenant"].astype(str).tolist(), strict=True))
    tenants = sorted({tenant_of.get(int(j), "") for j in segments["job_id"]})
    owner = np.array([tenant_of.get(int(j), "") for j in segments["job_id"]])
    starts, ends = segments["start_s"].to_numpy(dtype=float), segments["end_s"].to_numpy(dtype=float)
    held = segments["accelerators"].to_numpy(dtype=float)
    times = np.unique(np.concatenate([starts, ends]))
    levels = {}
    for tenant in tenants:
        mine = owner == tenant
        delta = np.zeros(len(times))
        np.add.at(delta, np.searchsorted(times, starts[mine]), held[mine])
        np.add.at(delta, np.searchsorted(times, ends[mine]), -held[mine])
        levels[tenant or "(none)"] = np.cumsum(delta)
    return times, levels


def _quotas(scenario: Mapping[str, Any]) -> dict[str, float]:
    training = (scenario.get("workload") or {}).get("training") or {}
    tenants = (training.get("tenancy") or {}).get("tenants") or {}
    return {name: float(spec.get("quota", 0) or 0) for name, spec in tenants.items() if isinstance(spec, Mapping)}


def _tenant_share(result: RunResult, segments: pd.DataFrame, path: Path) -> Path:
    times, levels = tenant_levels(result.jobs, segments)
    end = float(result.summary.get("sim_time_s") or (times.max() if len(times) else 0.0))
    scale, unit = time_unit(end)
    fig = Figure(figsize=(10, 3.8))
    ax = fig.subplots()
    colors = [f"C{i % 10}" for i in range(len(levels))]
    x = np.append(times, max(end, float(times.max()) if len(times) else 0.0)) / scale
    ax.stackplot(x, *[np.append(level, level[-1:]) for level in levels.values()], labels=list(levels),
                 colors=colors, step="post", alpha=0.75)
    quotas = _quotas(result.scenario)
    for (tenant, _), color in zip(levels.items(), colors, strict=True):
        if quotas.get(tenant):
            ax.axhline(quotas[tenant], color=color, ls="--", lw=1.2, label=f"{tenant} quota")
    ax.set_xlim(0, x.max() if len(x) else 1.0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("accelerators held")
    ax.set_title("Accelerators held per tenant (stacked); dashed: guaranteed quota", loc="left", fontsize=10)
    ax.legend(**LEGEND_ABOVE)
    ax.grid(alpha=0.3)
    return save(fig, path)
