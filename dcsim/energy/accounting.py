"""Energy, carbon, cost and water over time, per job and per request, from the frames of a run.

The timeseries gains a row wherever an input series changes (an hour of carbon intensity, say), so
every row is an interval over which IT power, outdoor conditions, PUE and intensity are all constant:
energy and carbon are then exact sums over rows, and facility = IT + cooling + losses row by row.
Per job: each segment in which it held accelerators draws (idle or busy accelerator power + its share
of its hosts' busy power) x its accelerators; facility energy and carbon integrate that power times the
PUE and the intensity over the segment. Per request: its tokens' share of its replica's accelerator
energy, times the mean PUE and intensity while it ran (admitted to end).
All of it is vectorised (searchsorted over cumulative integrals): no work per engine event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dcsim.energy.facility import facility_power
from dcsim.energy.loading import EnergyInputs

if TYPE_CHECKING:
    from dcsim.scenario.energy import Energy

J_PER_KWH = 3.6e6
J_PER_MWH = 3.6e9
IT_COMPONENTS = ("accelerators", "hosts", "network", "storage")


def refine(timeseries: pd.DataFrame, inputs: EnergyInputs, end_time: float) -> pd.DataFrame:
    """The timeseries with a copy of the row in force inserted wherever an input series changes."""
    times = timeseries["time_s"].to_numpy(dtype=float)
    if times.size == 0:
        return timeseries
    breaks = [series.changes_between(float(times[0]), float(end_time)) for series in inputs.all_series()]
    extra = np.setdiff1d(np.concatenate([np.empty(0), *breaks]), times)
    if extra.size == 0:
        return timeseries.reset_index(drop=True)
    source = np.concatenate([np.arange(times.size), np.searchsorted(times, extra, side="right") - 1])
    new_times = np.concatenate([times, extra])
    order = np.argsort(new_times, kind="stable")
    refined = timeseries.iloc[source[order]].reset_index(drop=True)
    refined["time_s"] = new_times[order]
    return refined


def add_energy_columns(timeseries: pd.DataFrame, inputs: EnergyInputs, energy: Energy) -> pd.DataFrame:
    """Append intensity, price, weather, losses, cooling, PUE and water columns; recompute facility power."""
    frame = timeseries.copy()
    times = frame["time_s"].to_numpy(dtype=float)
    it_w = frame["power_it_w"].to_numpy(dtype=float)
    if inputs.dry_bulb is not None and inputs.wet_bulb is not None:
        frame["dry_bulb_c"] = inputs.dry_bulb.at(times)
        frame["wet_bulb_c"] = inputs.wet_bulb.at(times)
    if energy.facility is not None:
        parts = facility_power(it_w, frame["dry_bulb_c"].to_numpy(), frame["wet_bulb_c"].to_numpy(), energy.facility)
        frame["power_losses_w"] = parts.losses_w
        frame["power_cooling_w"] = parts.cooling_w
        frame["power_facility_w"] = parts.facility_w(it_w)
        frame["free_cooling"] = parts.free_cooling
        frame["water_l_per_h"] = parts.water_l_per_s * 3600.0
    else:
        frame["power_facility_w"] = it_w * energy.pue
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["pue"] = np.where(it_w > 0, frame["power_facility_w"].to_numpy() / it_w, 1.0)
    frame["carbon_g_per_kwh"] = inputs.carbon.at(times)
    if inputs.price is not None:
        frame["price_per_mwh"] = inputs.price.at(times)
    return frame


@dataclass(frozen=True)
class Cumulative:
    """Running integrals of row-wise rates over the refined timeseries, read at any time by interpolation."""

    times: np.ndarray
    rates: np.ndarray  # rows x quantities: the rate held from each row's time
    totals: np.ndarray  # rows x quantities: integral from the first row to each row's time

    @classmethod
    def of(cls, times: np.ndarray, rates: np.ndarray) -> Cumulative:
        held = np.diff(times, append=times[-1])[:, None]
        totals = np.vstack([np.zeros((1, rates.shape[1])), np.cumsum(rates[:-1] * held[:-1], axis=0)])
        return cls(times, rates, totals)

    def between(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        return self._at(t1) - self._at(t0)

    def _at(self, t: np.ndarray) -> np.ndarray:
        t = np.clip(np.asarray(t, dtype=float), self.times[0], self.times[-1])
        index = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, self.times.size - 1)
        return np.asarray(self.totals[index] + self.rates[index] * (t - self.times[index])[:, None])


def factors(frame: pd.DataFrame) -> Cumulative:
    """Integrals of PUE, PUE x intensity (g/kWh) and PUE x price (per MWh) over time."""
    pue = frame["pue"].to_numpy(dtype=float)
    carbon = frame["carbon_g_per_kwh"].to_numpy(dtype=float)
    price = frame["price_per_mwh"].to_numpy(dtype=float) if "price_per_mwh" in frame else np.zeros_like(pue)
    rates = np.column_stack([pue, pue * carbon, pue * price, carbon])
    return Cumulative.of(frame["time_s"].to_numpy(dtype=float), rates)


def job_energy(jobs: pd.DataFrame, segments: pd.DataFrame, cumulative: Cumulative,
               per_accelerator_w: Mapping[str, tuple[float, float]], priced: bool) -> pd.DataFrame:
    """jobs with energy_it_kwh, energy_facility_kwh, carbon_kg (and cost) appended, from its segments.

    per_accelerator_w: accelerator model -> (power while holding but not computing, while computing),
    each including the accelerator's share of its host's busy power."""
    frame = jobs.copy()
    columns = ["energy_it_kwh", "energy_facility_kwh", "carbon_kg"] + (["energy_cost"] if priced else [])
    if segments.empty:
        for column in columns:
            frame[column] = 0.0
        return frame
    holding = np.asarray([per_accelerator_w.get(m, (0.0, 0.0))[0] for m in segments["accelerator_model"]])
    computing = np.asarray([per_accelerator_w.get(m, (0.0, 0.0))[1] for m in segments["accelerator_model"]])
    watts = np.where(segments["phase"].to_numpy() == "computing", computing, holding)
    watts = watts * segments["accelerators"].to_numpy(dtype=float)
    start, end = segments["start_s"].to_numpy(dtype=float), segments["end_s"].to_numpy(dtype=float)
    integrals = cumulative.between(start, end)
    per_segment = pd.DataFrame({
        "job_id": segments["job_id"].to_numpy(),
        "energy_it_kwh": watts * (end - start) / J_PER_KWH,
        "energy_facility_kwh": watts * integrals[:, 0] / J_PER_KWH,
        "carbon_kg": watts * integrals[:, 1] / J_PER_KWH / 1e3,
        "energy_cost": watts * integrals[:, 2] / J_PER_MWH,
    })
    totals = per_segment.groupby("job_id")[columns].sum()
    joined = frame[["job_id"]].join(totals, on="job_id")
    for column in columns:
        frame[column] = joined[column].fillna(0.0).to_numpy(dtype=float)
    return frame


def request_energy(requests: pd.DataFrame, replicas: pd.DataFrame, cumulative: Cumulative) -> pd.DataFrame:
    """requests with energy_it_j, energy_facility_j and carbon_g appended (completed tokens' share)."""
    frame = requests.copy()
    per_token = (replicas.set_index("replica_id")["energy_j"]
                 / replicas.set_index("replica_id")["output_tokens"].where(lambda s: s > 0))
    it_j = frame["replica"].map(per_token).to_numpy(dtype=float) * frame["output_tokens"].to_numpy(dtype=float)
    it_j = np.where(frame["state"].to_numpy() == "completed", np.nan_to_num(it_j), 0.0)
    start = frame["admitted_s"].to_numpy(dtype=float)
    end = frame["end_s"].to_numpy(dtype=float)
    valid = np.isfinite(start) & np.isfinite(end) & (end > start)
    s, e = np.where(valid, start, 0.0), np.where(valid, end, 1.0)
    integrals = cumulative.between(s, e)
    span = np.maximum(e - s, 1e-12)
    mean_pue = np.where(valid, integrals[:, 0] / span, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        intensity = np.where(valid & (integrals[:, 0] > 0), integrals[:, 1] / integrals[:, 0], 0.0)
    frame["energy_it_j"] = it_j
    frame["energy_facility_j"] = it_j * mean_pue
    frame["carbon_g"] = frame["energy_facility_j"].to_numpy() / J_PER_KWH * intensity
    return frame


BUDGET_TOLERANCE_W = 1e-6  # float noise allowed above a budget (as metrics/power_summary.py)


def budget_in_force(times: np.ndarray, budget: pd.DataFrame) -> np.ndarray:
    """The budget (W, NaN: none) in force at each of `times`: the last budget row at or before it."""
    at = budget["time_s"].to_numpy(dtype=float)
    values = budget["budget_w"].to_numpy(dtype=float)
    index = np.searchsorted(at, times, side="right") - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)


def energy_section(frame: pd.DataFrame, sim_time: float, inputs: EnergyInputs, energy: Energy,
                   jobs: pd.DataFrame | None, requests: pd.DataFrame | None,
                   budget: pd.DataFrame | None = None) -> dict[str, Any]:
    """The summary's `energy` section from the refined timeseries (with the columns of add_energy_columns)."""
    times = frame["time_s"].to_numpy(dtype=float)
    held = np.diff(times, append=times[-1]) if times.size else np.empty(0)
    it_w = frame["power_it_w"].to_numpy(dtype=float)
    facility_w = frame["power_facility_w"].to_numpy(dtype=float)
    components = {name: float(np.dot(frame[f"power_{name}_w"].to_numpy(dtype=float), held)) / J_PER_KWH
                  for name in IT_COMPONENTS}
    it_kwh = float(np.dot(it_w, held)) / J_PER_KWH
    facility_kwh = float(np.dot(facility_w, held)) / J_PER_KWH
    carbon = frame["carbon_g_per_kwh"].to_numpy(dtype=float)
    carbon_kg = float(np.dot(facility_w * carbon, held)) / J_PER_KWH / 1e3
    pue = frame["pue"].to_numpy(dtype=float)
    section: dict[str, Any] = {
        "it_kwh": it_kwh, "facility_kwh": facility_kwh,
        "pue": facility_kwh / it_kwh if it_kwh > 0 else None,  # energy-weighted (The Green Grid definition)
        "pue_time_mean": float(np.dot(pue, held)) / sim_time if sim_time > 0 else None,
        "pue_peak": float(pue[held > 0].max()) if (held > 0).any() else None,
        "avg_power_kw": facility_kwh * J_PER_KWH / sim_time / 1e3 if sim_time > 0 else 0.0,
        "peak_power_kw": float(facility_w.max()) / 1e3 if facility_w.size else 0.0,
        "peak_it_power_kw": float(it_w.max()) / 1e3 if it_w.size else 0.0,
        "by_component_kwh": components,
        "carbon_kg": carbon_kg,
        "carbon_intensity_mean_g_per_kwh": carbon_kg * 1e3 / facility_kwh if facility_kwh > 0 else None,
    }
    if "power_cooling_w" in frame:
        section["by_component_kwh"] = {
            **components,
            "cooling": float(np.dot(frame["power_cooling_w"].to_numpy(dtype=float), held)) / J_PER_KWH,
            "losses": float(np.dot(frame["power_losses_w"].to_numpy(dtype=float), held)) / J_PER_KWH,
        }
        water_l = float(np.dot(frame["water_l_per_h"].to_numpy(dtype=float), held)) / 3600.0
        section["water_l"] = water_l
        section["wue_l_per_kwh"] = water_l / it_kwh if it_kwh > 0 else None
        section["free_cooling_hours"] = float(np.dot(frame["free_cooling"].to_numpy(dtype=float), held)) / 3600.0
    if "price_per_mwh" in frame:
        price = frame["price_per_mwh"].to_numpy(dtype=float)
        section["cost"] = float(np.dot(facility_w * price, held)) / J_PER_MWH
        section["currency"] = energy.currency
    if budget is not None:  # a power policy's IT power budget over time (energy/subsystem.py it_budget)
        in_force = budget_in_force(times, budget)
        has = ~np.isnan(in_force)
        section["it_power_budget_kw"] = float(np.nanmin(budget["budget_w"].to_numpy(dtype=float))) / 1e3
        section["peak_over_budget"] = bool(np.any(it_w[has] > in_force[has] + BUDGET_TOLERANCE_W))
    named = inputs.named()
    held_rows = {name: series.held_rows for name, series in named.items() if series.held_rows}
    if held_rows:
        section["series_cells_held"] = held_rows
    # a run without a horizon may outlast a non-repeating series: its last value held, said here
    beyond = {name: sim_time - series.data_until for name, series in named.items() if sim_time > series.data_until}
    if beyond:
        section["series_beyond_data_s"] = beyond
    if jobs is not None and "energy_facility_kwh" in jobs:
        section["jobs_facility_kwh"] = float(jobs["energy_facility_kwh"].sum())
        section["jobs_carbon_kg"] = float(jobs["carbon_kg"].sum())
        # When the jobs' energy was used, apart from how much: what carbon-aware deferral changes.
        section["jobs_carbon_g_per_kwh"] = (section["jobs_carbon_kg"] * 1e3 / section["jobs_facility_kwh"]
                                            if section["jobs_facility_kwh"] > 0 else None)
    if requests is not None and "energy_facility_j" in requests:
        tokens = float(requests.loc[requests["state"] == "completed", "output_tokens"].sum())
        section["serving_facility_j_per_output_token"] = (
            float(requests["energy_facility_j"].sum()) / tokens if tokens else None)
        section["serving_carbon_mg_per_output_token"] = (
            float(requests["carbon_g"].sum()) * 1e3 / tokens if tokens else None)
    return section
