"""Power policies (issue 17): budget caps, demand response, idle shutdown, carbon-aware deferral."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcsim.energy.series import TimeSeries
from dcsim.policies import build, names
from dcsim.runner import run
from dcsim.scenario import scenario_from_dict
from tests.helpers import ROOT, tiny_scenario

EXAMPLES: dict[str, dict[str, Any]] = {
    "none": {},
    "budget": {"budget": "9kW"},
    "demand_response": {"windows": [{"start": "01:00", "end": "03:00", "budget": "8kW"}]},
    "idle_shutdown": {"idle_after": "5min", "wake_latency": "2min"},
    "carbon_aware": {"signal": "carbon"},
    "combined": {"parts": [{"name": "budget", "budget": "9kW"}, {"name": "idle_shutdown"}]},
}


def _run(data: dict[str, Any], seed: int | None = None) -> Any:
    return run(scenario_from_dict(data, "<test>", str(ROOT)), seed=seed)


def test_every_power_policy_has_an_example() -> None:
    assert sorted(EXAMPLES) == [n for n in names("power") if not n.startswith("test_")]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_power_policy_conformance(name: str) -> None:
    """Parameters round-trip and are keyword-only; a run completes every job, twice identically."""
    policy = build("power", name, EXAMPLES[name])
    params = policy.get_params()
    assert build("power", name, params).get_params() == params
    for param in inspect.signature(type(policy).__init__).parameters.values():
        assert param.name == "self" or param.kind is inspect.Parameter.KEYWORD_ONLY
    assert policy.family == "power" and policy.name == name
    data = tiny_scenario(policies={"scheduler": "fifo", "placement": "pack",
                                   "power": {"name": name, "params": EXAMPLES[name]}})
    data["workload"]["training"]["deferrable"] = {"fraction": 0.5, "slack": "6h"}
    first, second = _run(data), _run(data)
    assert (first.jobs["state"] == "completed").all()
    pd.testing.assert_frame_equal(first.jobs, second.jobs)
    pd.testing.assert_frame_equal(first.timeseries, second.timeseries)
    first.summary.pop("wall_time_s"), second.summary.pop("wall_time_s")
    assert first.summary == second.summary
    assert ("power" in first.summary) == (name != "none")


# --- budget: capped jobs slow by the calibrated factor ---------------------------------------------------


def _one_v100(power: dict[str, Any] | None, hours: float = 1.0) -> dict[str, Any]:
    data = tiny_scenario()
    data["cluster"] = {"node_pools": [{"name": "v", "count": 1, "accelerator": "V100", "accelerators_per_node": 1,
                                       "host_power": {"idle": "100W", "busy": "100W"}}]}
    data["workload"]["training"] = {
        "source": "synthetic", "jobs": 1, "arrival": {"process": "constant", "rate": "1/h"},
        "accelerators": {"values": [1]}, "duration": {"distribution": "constant", "value": f"{hours}h"},
        "models": {"ResNet-50": 1}, "reference_accelerator": "V100"}
    if power is not None:
        data["policies"]["power"] = power
    return data


def test_capped_job_slows_by_the_calibrated_factor() -> None:
    """One V100 job under a 220 W budget (host 100 W): the accelerator may draw 120 W. Calibrated V100
    (Zeus): busy D, eta = power/cap, beta; cap c = 120 / eta; run time x (D / c) ** beta."""
    fit = yaml.safe_load((ROOT / "dcsim" / "catalog" / "calibration.yaml").read_text())["power"]["training"]["V100"]
    busy, eta, beta = fit["busy_w"], fit["cap_power_ratio"], fit["cap_time_exponent"]
    cap = math.floor(120.0 / eta)  # caps are whole watts, rounded down
    assert cap < busy and cap > 0.33 * 300  # inside the governor's range of caps
    multiplier = (busy / cap) ** beta  # about 1.08
    base = _run(_one_v100(None))
    capped = _run(_one_v100({"name": "budget", "params": {"budget": "220W", "levels": 0}}))  # continuous caps
    base_run = float(base.jobs["run_s"].iloc[0])
    assert base_run == pytest.approx(3600.0)
    run_s = float(capped.jobs["run_s"].iloc[0])
    assert run_s == pytest.approx(3600.0 * multiplier, rel=1e-9)
    ts = capped.timeseries
    computing = ts[(ts["busy_all"] == 1)]
    assert computing["power_it_w"].max() == pytest.approx(100.0 + eta * cap, rel=1e-9)
    assert (ts["power_it_w"] <= 220.0 + 1e-6).all()
    assert capped.summary["power"]["capped_accelerator_hours"] == pytest.approx(3600.0 * multiplier / 3600, rel=1e-9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), share=st.floats(0.0, 1.0), rate=st.sampled_from(["20/h", "60/h"]))
def test_power_budget_is_never_exceeded(seed: int, share: float, rate: str) -> None:
    """Any budget from what the cluster draws with every accelerator at its lowest cap and every host busy,
    up to its uncapped peak, holds at every instant of the recorded power."""
    data = tiny_scenario(seed=seed)
    data["workload"]["training"]["arrival"]["rate"] = rate
    data["workload"]["training"]["jobs"] = 40
    # H100: TDP 700 W, no calibrated cap curve (draw = min(TDP, cap)); TPU-v4: TDP from the catalog.
    from dcsim.catalog import load_catalog

    catalog = load_catalog()
    floor = 16 * 0.33 * catalog.accelerator("H100").tdp_w.value + 8 * 0.33 * catalog.accelerator("TPU-v4").tdp_w.value
    floor += 2 * 900 + 2 * 200
    peak = float(_run(data).timeseries["power_it_w"].max())
    budget = floor + share * max(peak - floor, 0.0)
    data["policies"]["power"] = {"name": "budget", "params": {"budget": budget}}
    result = _run(data)
    assert (result.timeseries["power_it_w"] <= budget + 1e-6).all()
    assert result.summary["power"]["over_budget_s"] == 0
    assert (result.jobs["state"] == "completed").all()


def test_demand_response_lowers_power_inside_the_window_only() -> None:
    data = tiny_scenario(seed=5)
    data["workload"]["training"]["jobs"] = 120
    base = _run(data)
    ts = base.timeseries
    window = (ts["time_s"] >= 3600) & (ts["time_s"] < 3 * 3600)
    limit = 0.8 * float(ts.loc[window, "power_it_w"].max())
    data["policies"]["power"] = {"name": "demand_response",
                                 "params": {"windows": [{"start": "01:00", "end": "03:00", "budget": limit}]}}
    result = _run(data)
    ts2 = result.timeseries
    spans = np.diff(ts2["time_s"].to_numpy(), append=ts2["time_s"].iloc[-1])
    inside = (ts2["time_s"] >= 3600) & (ts2["time_s"] < 3 * 3600)
    assert (ts2.loc[inside, "power_it_w"] <= limit + 1e-6).all()
    assert ts2.loc[~inside & (spans > 0), "power_it_w"].max() > limit  # outside, no cap applies
    frame = result.power_policy
    assert frame is not None and frame.loc[frame["time_s"] == 3600, "budget_w"].iloc[0] == pytest.approx(limit)
    assert frame.loc[frame["time_s"] < 3600, "budget_w"].isna().all()


# --- idle shutdown -------------------------------------------------------------------------------------


def test_wake_latency_shows_in_the_wait() -> None:
    """Jobs 1 h apart (the first at 1 h), each 10 min: the node is off (idle 5 min) when each arrives, so
    every job waits exactly the wake latency."""
    data = _one_v100({"name": "idle_shutdown", "params": {"idle_after": "5min", "wake_latency": "3min",
                                                          "off_power": "5W"}}, hours=10 / 60)
    data["workload"]["training"]["jobs"] = 5
    result = _run(data)
    waits = result.jobs["wait_s"].to_numpy()
    assert list(result.jobs["submit_s"]) == [3600.0 * k for k in range(1, 6)]
    assert waits == pytest.approx([180.0] * 5)
    power = result.summary["power"]
    # off from 5 min after each job (and from 5 min) until the next arrival: 55 min + 4 x 45 min
    assert power["wakes"] == 5
    assert power["shutdown_node_hours"] == pytest.approx((55 + 4 * (60 - 3 - 10 - 5)) / 60)
    ts = result.timeseries  # off: 5 W in place of idle accelerator (39 W) and host (100 W)
    assert ts["power_it_w"].min() == pytest.approx(5.0)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), idle=st.sampled_from(["0s", "1min", "30min"]),
       latency=st.sampled_from(["0s", "5min", "1h"]), keep=st.integers(0, 1))
def test_idle_shutdown_never_strands_a_job(seed: int, idle: str, latency: str, keep: int) -> None:
    data = tiny_scenario(seed=seed)
    data["workload"]["training"]["accelerators"] = {"values": [1, 2, 4, 8, 16], "weights": [4, 2, 2, 1, 1]}
    data["policies"]["power"] = {"name": "idle_shutdown",
                                 "params": {"idle_after": idle, "wake_latency": latency, "keep_on": keep}}
    result = _run(data)
    jobs = result.jobs
    assert ((jobs["state"] == "completed") | (jobs["state"] == "rejected")).all()
    base = _run({k: v for k, v in data.items() if k != "policies"} | {"policies": {"scheduler": "fifo"}})
    assert list(jobs["state"]) == list(base.jobs["state"])


# --- carbon-aware deferral -----------------------------------------------------------------------------


def _diurnal(tmp_path: Path) -> Path:
    """Carbon intensity over a day: 500 g/kWh by day, 100 at night (00:00-06:00 and 22:00-24:00)."""
    rows = ["timestamp,ci"] + [f"2022-07-01T{h:02d}:00:00,{100 if h < 6 or h >= 22 else 500}" for h in range(24)]
    path = tmp_path / "ci.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _deferral_scenario(tmp_path: Path, power: dict[str, Any] | None) -> dict[str, Any]:
    data = tiny_scenario(seed=11, horizon="4d")
    data["cluster"]["node_pools"][0]["count"] = 4  # ample capacity: deadlines are feasible
    training = data["workload"]["training"]
    # one accelerator per job: released together, gangs would be spread over nodes (slower), which is
    # the placement's doing, not the deferral's
    training.update({"jobs": 30, "arrival": {"process": "poisson", "rate": "3/h"}, "accelerators": {"values": [1]},
                     "duration": {"distribution": "lognormal", "median": "1h", "sigma": 0.5},
                     "deferrable": {"fraction": 1.0, "slack": "20h"}, "estimate_error": 0.0})
    data["energy"] = {"start": "2022-07-01T06:00:00+00:00",
                      "carbon_intensity": {"file": str(_diurnal(tmp_path)), "time_column": "timestamp",
                                           "value_column": "ci", "unit": "gCO2/kWh", "time_zone": "UTC",
                                           "repeat": "day"}}
    if power is not None:
        data["policies"]["power"] = power
    return data


def _carbon_kg(result: Any, series: TimeSeries, above_idle: bool = False) -> float:
    """Sum over the piecewise-constant power rows of IT power (or its part above the idle cluster's) x
    the integral of intensity (exact)."""
    ts = result.timeseries
    times, power = ts["time_s"].to_numpy(), ts["power_it_w"].to_numpy()
    if above_idle:
        power = power - power[0]  # at t = 0 nothing runs
    total = sum(p * series.integral(a, b) for a, b, p in zip(times[:-1], times[1:], power[:-1], strict=True))
    return total / 3.6e6 / 1000.0


def test_carbon_aware_deferral_lowers_carbon_and_meets_feasible_deadlines(tmp_path: Path) -> None:
    from dcsim.energy.loading import energy_inputs

    base_data = _deferral_scenario(tmp_path, None)
    scenario = scenario_from_dict(base_data, "<test>", str(ROOT))
    series = energy_inputs(scenario.energy, str(ROOT), scenario.horizon).carbon
    base = _run(base_data)
    aware = _run(_deferral_scenario(tmp_path, {"name": "carbon_aware"}))
    assert (base.jobs["state"] == "completed").all() and (aware.jobs["state"] == "completed").all()
    assert _carbon_kg(aware, series) < _carbon_kg(base, series)
    # the jobs' own share: most of it moves from 500 to 100 g/kWh hours
    assert _carbon_kg(aware, series, above_idle=True) < 0.5 * _carbon_kg(base, series, above_idle=True)
    # the summary's intensity of the jobs' energy is their carbon over their energy, and it falls
    for result in (base, aware):
        energy = result.summary["energy"]
        assert energy["jobs_carbon_g_per_kwh"] == pytest.approx(
            result.jobs["carbon_kg"].sum() * 1e3 / result.jobs["energy_facility_kwh"].sum(), rel=1e-12)
    assert aware.summary["energy"]["jobs_carbon_g_per_kwh"] < base.summary["energy"]["jobs_carbon_g_per_kwh"]
    deferral = aware.summary["power"]["deferral"]
    assert deferral["deferrable_jobs"] == 30 and deferral["deferred_hours"] > 0
    assert deferral["deadlines_missed"] == 0 and deferral["not_completed"] == 0
    # waits include the deferral: the mean wait grows
    assert aware.jobs["wait_s"].mean() > base.jobs["wait_s"].mean()


# --- bad input: one line naming file and field, exit 2, nothing written --------------------------------


def _cli_fails(tmp_path: Path, data: dict[str, Any], needle: str, file: Path | None = None) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "dcsim", "run", str(path), "--output", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(file or path) in lines[0] and needle in lines[0], done.stderr
    assert not out.exists()


def test_budget_below_idle_power_is_refused(tmp_path: Path) -> None:
    data = tiny_scenario(policies={"power": {"name": "budget", "budget": "1kW"}})
    _cli_fails(tmp_path, data, "policies.power.params.budget")
    # dcsim validate says the same (the check needs the built cluster's idle power)
    path = tmp_path / "bad.yaml"
    done = subprocess.run([sys.executable, "-m", "dcsim", "validate", str(path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 2 and "policies.power.params.budget" in done.stderr and "idle power" in done.stderr


def test_demand_response_window_ending_before_it_starts_is_refused(tmp_path: Path) -> None:
    data = tiny_scenario(policies={"power": {"name": "demand_response",
                                             "windows": [{"start": "18:00", "end": "17:00", "budget": "9kW"}]}})
    _cli_fails(tmp_path, data, "windows[0].end")


def test_negative_wake_latency_is_refused(tmp_path: Path) -> None:
    data = tiny_scenario(policies={"power": {"name": "idle_shutdown", "wake_latency": -5}})
    _cli_fails(tmp_path, data, "wake_latency")


def test_deadline_before_submit_is_refused(tmp_path: Path) -> None:
    trace = tmp_path / "jobs.csv"
    trace.write_text("submit,duration,accelerators,deadline\n0,600,1,2h\n60,600,1,-10min\n")
    data = tiny_scenario()
    data["workload"]["training"] = {"source": "trace", "path": str(trace), "columns": {"deadline": "deadline"}}
    _cli_fails(tmp_path, data, "line 3: column 'deadline': deadline before its submit", trace)


def test_trace_deadlines_make_jobs_deferrable(tmp_path: Path) -> None:
    trace = tmp_path / "jobs.csv"
    trace.write_text("submit,duration,accelerators,deadline\n0,600,1,2h\n60,600,1,\n")
    data = tiny_scenario(policies={"power": "carbon_aware"})
    data["workload"]["training"] = {"source": "trace", "path": str(trace), "columns": {"deadline": "deadline"}}
    result = _run(data)
    assert result.summary["power"]["deferral"]["deferrable_jobs"] == 1


def test_dated_windows_keep_their_utc_offsets() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    # 17:00+02:00 is 15:00 UTC; to 18:00 UTC that is three hours, not the one the wall times suggest.
    policy = build("power", "demand_response", {"windows": [
        {"start": "2022-07-01T17:00+02:00", "end": "2022-07-01T18:00Z", "budget": "1kW"}]})
    utc_midnight = datetime(2022, 7, 1, tzinfo=UTC)
    assert policy.budget_w(15 * 3600 - 1, utc_midnight) is None
    assert policy.budget_w(15 * 3600, utc_midnight) == 1000.0
    assert policy.budget_w(18 * 3600 - 1, utc_midnight) == 1000.0
    assert policy.budget_w(18 * 3600, utc_midnight) is None
    # A run starting at midnight in UTC-7 (energy.start with its offset): the same instants, 7 h later in run time
    pacific = datetime(2022, 7, 1, tzinfo=timezone(timedelta(hours=-7)))
    assert policy.budget_w(8 * 3600, pacific) == 1000.0 and policy.budget_w(7.9 * 3600, pacific) is None
    # Without offsets a dated window is wall time at the site, as energy.start is written
    local = build("power", "demand_response", {"windows": [
        {"start": "2022-07-01T17:00", "end": "2022-07-01T18:00", "budget": "1kW"}]})
    assert local.budget_w(17 * 3600, pacific) == 1000.0 and local.budget_w(16.9 * 3600, pacific) is None
    with pytest.raises(Exception, match="both have a UTC offset or both have none"):
        build("power", "demand_response", {"windows": [
            {"start": "2022-07-01T17:00+02:00", "end": "2022-07-01T18:00", "budget": "1kW"}]})
