"""Charts of the energy subsystem, from the saved timeseries only (runs with series or a facility model):

- energy_power.png: facility power stacked by component (IT, power-distribution losses, cooling) over
  time; with a power policy's budget, that budget (on IT power, which the governor caps) as a dashed step
  line from the power_policy frame, so it follows demand-response windows;
- carbon_power.png: grid carbon intensity and facility power on one time axis (two panels);
- pue.png: PUE over time with its time-weighted mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dcsim.reporting.charts import LEGEND_ABOVE, finish_time_chart, levels, time_axis, time_unit
from dcsim.reporting.drawing import Chart, save
from dcsim.reporting.format import esc, number, table
from dcsim.results import RunResult

ENERGY_CAPTIONS = {
    "energy_power": "Facility power by component over time: IT, power-distribution losses (UPS, PDU, other "
                    "building loads) and cooling; the dashed red line is a power policy's budget, which limits IT "
                    "power (the gray band), not facility power.",
    "carbon_power": "Grid carbon intensity (top) and the facility's power (bottom) on one time axis.",
    "pue": "Power usage effectiveness (facility / IT power) over time; dashed: its time-weighted mean.",
}


def energy_charts(result: RunResult) -> list[Chart]:
    ts = result.timeseries
    if ts is None or ts.empty or "carbon_g_per_kwh" not in ts:
        return []
    end = float(ts["time_s"].iloc[-1])
    scale, unit = time_unit(end)
    energy = result.summary.get("energy") or {}
    budget = result.frames.get("power_policy")
    return [("energy_power.png", lambda path: _components(ts, budget, path, scale, unit)),
            ("carbon_power.png", lambda path: _carbon_power(ts, path, scale, unit)),
            ("pue.png", lambda path: _pue(ts, energy, path, scale, unit))]


def _components(ts: pd.DataFrame, budget: pd.DataFrame | None, path: Path, scale: float, unit: str) -> Path:
    fig = Figure(figsize=(10, 3.5))
    ax = fig.subplots()
    names = [("power_it_w", "IT", "tab:gray")]
    if "power_losses_w" in ts:
        names += [("power_losses_w", "losses", "tab:purple"), ("power_cooling_w", "cooling", "tab:blue")]
    else:
        ts = ts.assign(power_overhead_w=ts["power_facility_w"] - ts["power_it_w"])
        names.append(("power_overhead_w", "overhead (constant PUE)", "tab:blue"))
    times, values = levels(ts, [column for column, _, _ in names])
    ax.stackplot(times / scale, *(values[:, i] / 1e3 for i in range(len(names))), step="post",
                 labels=[label for _, label, _ in names], colors=[color for _, _, color in names], alpha=0.8)
    if budget is not None and "budget_w" in budget and budget["budget_w"].notna().any():
        # the governor's budget over time (NaN where none is in force: a gap in the line)
        times_s, budget_w = budget["time_s"].to_numpy(dtype=float), budget["budget_w"].to_numpy(dtype=float)
        keep = np.ones(len(budget_w), dtype=bool)  # one point per change of the budget, and the last
        keep[1:-1] = ~((budget_w[1:-1] == budget_w[:-2]) | (np.isnan(budget_w[1:-1]) & np.isnan(budget_w[:-2])))
        ax.step(times_s[keep] / scale, budget_w[keep] / 1e3,
                where="post", color="tab:red", ls="--", lw=1.2, label="IT power budget (caps IT power)")
    ax.set_ylim(bottom=0)
    ax.legend(**LEGEND_ABOVE)
    return finish_time_chart(fig, ax, ts, scale, unit, "power (kW)", "Facility power by component", path)


def _carbon_power(ts: pd.DataFrame, path: Path, scale: float, unit: str) -> Path:
    fig = Figure(figsize=(10, 5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    times, values = levels(ts, ["carbon_g_per_kwh", "power_facility_w"])
    top.step(times / scale, values[:, 0], where="post", color="tab:green", lw=1.2)
    top.set_ylabel("gCO2/kWh")
    top.set_ylim(bottom=0)
    top.set_title("Grid carbon intensity and facility power", loc="left")
    bottom.step(times / scale, values[:, 1] / 1e3, where="post", color="tab:red", lw=1.2)
    bottom.set_ylabel("facility power (kW)")
    bottom.set_ylim(bottom=0)
    time_axis(bottom, ts, scale, unit)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return save(fig, path)


def _pue(ts: pd.DataFrame, energy: Mapping[str, Any], path: Path, scale: float, unit: str) -> Path:
    fig = Figure(figsize=(10, 3))
    ax = fig.subplots()
    times, values = levels(ts, ["pue"])
    ax.step(times / scale, values[:, 0], where="post", color="tab:blue", lw=1.2, label="PUE")
    mean = energy.get("pue_time_mean")
    if isinstance(mean, int | float):
        ax.axhline(mean, color="tab:gray", ls="--", lw=1.0, label=f"time-weighted mean {mean:.3f}")
    top = float(values[:, 0].max()) if len(values) else 1.0
    ax.set_ylim(1.0, top + max(0.02, 0.1 * (top - 1.0)))  # room above the peak
    ax.legend(**LEGEND_ABOVE)
    return finish_time_chart(fig, ax, ts, scale, unit, "PUE", "PUE over time", path)


def energy_detail_tables(s: Mapping[str, Any]) -> str:
    """Cooling, water, cost and per-job figures of the energy subsystem (empty for constant-PUE runs)."""
    e = s.get("energy")
    if not isinstance(e, Mapping) or "pue_time_mean" not in e:
        return ""
    rows = [["PUE, time-weighted mean", esc(number(e.get("pue_time_mean")))],
            ["PUE, peak", esc(number(e.get("pue_peak")))],
            ["peak IT power", f"{esc(number(e.get('peak_it_power_kw')))} kW"],
            ["mean carbon intensity (energy-weighted)", f"{esc(number(e.get('carbon_intensity_mean_g_per_kwh')))} "
                                                         "gCO2/kWh"]]
    if "water_l" in e:
        rows += [["water (cooling towers)", f"{esc(number(e.get('water_l')))} L"],
                 ["WUE", f"{esc(number(e.get('wue_l_per_kwh')))} L/kWh IT"],
                 ["free-cooling hours", f"{esc(number(e.get('free_cooling_hours')))} h"]]
    if "cost" in e:
        rows.append(["energy cost", f"{esc(number(e.get('cost')))} {esc(str(e.get('currency', '')))}"])
    if "it_power_budget_kw" in e:
        rows.append(["IT power budget (lowest in force)", f"{esc(number(e.get('it_power_budget_kw')))} kW"])
        rows.append(["IT power above the budget", "yes" if e.get("peak_over_budget") else "no"])
    if "jobs_carbon_kg" in e:
        rows += [["training jobs' facility energy", f"{esc(number(e.get('jobs_facility_kwh')))} kWh"],
                 ["training jobs' carbon", f"{esc(number(e.get('jobs_carbon_kg')))} kg CO2e"],
                 ["carbon intensity of the jobs' energy", f"{esc(number(e.get('jobs_carbon_g_per_kwh')))} gCO2e/kWh"]]
    if e.get("serving_carbon_mg_per_output_token") is not None:
        rows += [["serving facility energy per output token",
                  f"{esc(number(e.get('serving_facility_j_per_output_token')))} J"],
                 ["serving carbon per output token", f"{esc(number(e.get('serving_carbon_mg_per_output_token')))} mg"]]
    return table(["energy over time", ""], rows)
