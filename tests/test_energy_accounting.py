"""Facility model and energy accounting: conservation, carbon across an intensity step (by hand), the
chiller curve's reference points, PUE >= 1, per-job sums, and bad series input through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcsim.energy.accounting import add_energy_columns, energy_section, factors, job_energy, refine
from dcsim.energy.facility import (
    AHRI_CHILLED_WATER_C,
    AHRI_CONDENSER_LEAVING_C,
    COP_MAX,
    CYCLES_OF_CONCENTRATION,
    LATENT_HEAT_J_PER_KG,
    chiller_cop,
    facility_power,
)
from dcsim.energy.loading import EnergyInputs
from dcsim.energy.series import TimeSeries
from dcsim.runner import run
from dcsim.scenario.energy import Energy, Facility
from dcsim.scenario.loading import scenario_from_dict
from tests.helpers import SHARED_DATA, tiny_scenario, write_yaml

GRID = SHARED_DATA / "sustaindc-grid-weather"


def _frame(times: list[float], it_w: list[float]) -> pd.DataFrame:
    zero = [0.0] * len(times)
    return pd.DataFrame({"time_s": times, "power_accelerators_w": it_w, "power_hosts_w": zero,
                         "power_network_w": zero, "power_storage_w": zero, "power_it_w": it_w})


def test_carbon_across_an_intensity_step_by_hand() -> None:
    # 1 kW of IT from 0 to 1.5 h, PUE 1.2; 100 g/kWh for the first hour, 300 g/kWh after.
    inputs = EnergyInputs(TimeSeries([0.0, 3600.0], [100.0, 300.0], "gCO2/kWh"), None, None, None)
    energy = Energy.model_validate({"pue": 1.2, "start": "2022-01-01T00:00:00Z"})
    frame = add_energy_columns(refine(_frame([0.0, 5400.0], [1000.0, 1000.0]), inputs, 5400.0), inputs, energy)
    assert list(frame["time_s"]) == [0.0, 3600.0, 5400.0]  # a row where the intensity steps
    section = energy_section(frame, 5400.0, inputs, energy, None, None)
    # 1.2 kWh x 100 g + 0.6 kWh x 300 g = 120 g + 180 g
    assert section["facility_kwh"] == pytest.approx(1.8)
    assert section["carbon_kg"] == pytest.approx(0.300)
    # a job computing on one accelerator (500 W) from 0.5 h to 1.5 h: 0.3 kWh at 100 g + 0.3 kWh at 300 g
    jobs = pd.DataFrame({"job_id": [7]})
    segments = pd.DataFrame({"job_id": [7, 7], "phase": ["starting", "computing"], "start_s": [1000.0, 1800.0],
                             "end_s": [1800.0, 5400.0], "accelerator_model": ["X", "X"], "accelerators": [1, 1]})
    out = job_energy(jobs, segments, factors(frame), {"X": (100.0, 500.0)}, priced=False)
    # starting: 100 W x 800 s at PUE 1.2 and 100 g/kWh; computing: 600 W x 1800 s at 100 g, then at 300 g
    starting_kwh = 100 * 800 / 3.6e6
    assert out["energy_it_kwh"].iloc[0] == pytest.approx(starting_kwh + 0.5)
    assert out["energy_facility_kwh"].iloc[0] == pytest.approx(1.2 * starting_kwh + 0.6)
    assert out["carbon_kg"].iloc[0] == pytest.approx((1.2 * starting_kwh * 100 + 0.3 * 100 + 0.3 * 300) / 1e3)


def test_chiller_curve_reference_points() -> None:
    # AHRI 550/590 rating point: ASHRAE 90.1-2019 minimum 0.576 kW/ton -> COP 6.106
    assert float(chiller_cop(AHRI_CHILLED_WATER_C, AHRI_CONDENSER_LEAVING_C)) == pytest.approx(3.517 / 0.576)
    # Carnot scaling: the same lift at a warmer evaporator gives COP in proportion to its absolute temperature
    warm = float(chiller_cop(AHRI_CHILLED_WATER_C + 5, AHRI_CONDENSER_LEAVING_C + 5))
    assert warm == pytest.approx(3.517 / 0.576 * (AHRI_CHILLED_WATER_C + 5 + 273.15) / (AHRI_CHILLED_WATER_C + 273.15))
    # less lift, better COP, up to the low-lift cap
    lifts = chiller_cop(np.full(6, 15.0), np.array([45.0, 40.0, 35.0, 30.0, 25.0, 16.0]))
    assert (np.diff(lifts) >= 0).all() and lifts[-1] == COP_MAX


def test_economizer_and_water_by_hand() -> None:
    facility = Facility.model_validate({"cooling": {"kind": "air", "supply_air": 27.0}})
    it = np.array([1e6, 1e6])
    parts = facility_power(it, np.array([5.0, 40.0]), np.array([2.0, 26.0]), facility)
    assert parts.free_cooling[0] == 1.0 and parts.free_cooling[1] == 0.0  # cold: no chiller; hot: all chiller
    assert parts.cooling_w[1] > 2 * parts.cooling_w[0]
    # water: all the heat rejected by the towers evaporates, plus blowdown at 5 cycles of concentration
    losses = 1e6 * (1 / (0.96 * 0.985) - 1 + 0.02)
    heat = 1e6 + losses
    rejected_free = (heat * 1.04) * 1.03  # heat + air-handler fans, then pumps and tower fans
    per_kg = LATENT_HEAT_J_PER_KG / (CYCLES_OF_CONCENTRATION / (CYCLES_OF_CONCENTRATION - 1))
    assert parts.water_l_per_s[0] == pytest.approx(rejected_free / per_kg)
    dry = Facility.model_validate({"cooling": {"kind": "air", "evaporative": False}})
    assert facility_power(it, np.array([5.0]), np.array([2.0]), dry).water_l_per_s[0] == 0.0


def test_liquid_cooling_needs_less_cooling_power_than_air_on_a_hot_day() -> None:
    it = np.full(3, 1e6)
    dry, wet = np.array([10.0, 25.0, 40.0]), np.array([5.0, 18.0, 24.0])
    air = facility_power(it, dry, wet, Facility.model_validate({"cooling": {"kind": "air"}}))
    liquid = facility_power(it, dry, wet, Facility.model_validate({"cooling": {"kind": "liquid"}}))
    assert liquid.cooling_w[2] < air.cooling_w[2]
    # warm-water loops (32 degC supply) with dry coolers run chiller-free up to ~30 degC dry bulb
    assert liquid.free_cooling[1] > air.free_cooling[1]
    assert liquid.water_l_per_s[0] < air.water_l_per_s[0]  # dry coolers on the liquid share: less water


def test_parameter_catalog_cites_every_constant() -> None:
    from dcsim.energy.facility import FACILITY_CATALOG

    assert len(FACILITY_CATALOG) >= 15
    for name, entry in FACILITY_CATALOG.items():
        assert isinstance(entry["value"], int | float) and len(entry["source"]) > 20, name


cooling_specs = st.one_of(
    st.builds(lambda s, e, v: {"kind": "air", "supply_air": s, "economizer": e, "evaporative": v},
              st.floats(15, 35), st.booleans(), st.booleans()),
    st.builds(lambda f, w, v: {"kind": "liquid", "liquid_fraction": f, "supply_water": w, "evaporative": v},
              st.floats(0, 1), st.floats(15, 45), st.booleans()))


@settings(max_examples=200, deadline=None)
@given(cooling_specs, st.floats(0.6, 1.0), st.floats(0.6, 1.0), st.floats(0, 0.5),
       st.lists(st.tuples(st.floats(0, 1e7), st.floats(-40, 55), st.floats(0, 1)), min_size=1, max_size=20))
def test_pue_never_below_one_and_parts_add_up(cooling: dict[str, Any], ups: float, pdu: float, other: float,
                                              rows: list[tuple[float, float, float]]) -> None:
    facility = Facility.model_validate({"cooling": cooling, "ups_efficiency": ups, "pdu_efficiency": pdu,
                                        "other_fraction": other})
    it = np.array([r[0] for r in rows])
    dry = np.array([r[1] for r in rows])
    wet = dry - np.array([r[2] for r in rows]) * 20.0  # wet bulb at or below the dry bulb
    parts = facility_power(it, dry, wet, facility)
    assert (parts.losses_w >= 0).all() and (parts.cooling_w >= 0).all() and (parts.water_l_per_s >= 0).all()
    assert (parts.facility_w(it) >= it).all()
    assert np.array_equal(parts.facility_w(it), it + parts.losses_w + parts.cooling_w)


def _run_with(tmp_path: Path, energy: dict[str, Any], **changes: Any) -> Any:
    data = tiny_scenario(energy=energy, **changes)
    return run(scenario_from_dict(data, "tiny", str(tmp_path)))


def test_run_conserves_energy_on_every_row_and_jobs_sum_below_total(tmp_path: Path) -> None:
    rows = "".join(f"2022-01-01T{h:02d}:00:00Z,{100 + 40 * (h % 5)}\n" for h in range(24))
    (tmp_path / "ci.csv").write_text("timestamp,ci\n" + rows)
    energy = {"start": "2022-01-01T00:00:00Z", "weather": {"dry_bulb": 30.0, "wet_bulb": 21.0},
              "carbon_intensity": {"file": "ci.csv", "value_column": "ci", "unit": "gCO2/kWh", "repeat": "day"},
              "facility": {"cooling": {"kind": "air"}}, "price": 50}
    result = _run_with(tmp_path, energy)
    ts = result.timeseries
    assert np.allclose(ts["power_facility_w"], ts["power_it_w"] + ts["power_cooling_w"] + ts["power_losses_w"],
                       rtol=1e-12, atol=0)
    assert (ts["pue"] >= 1).all()
    held = np.diff(ts["time_s"].to_numpy(), append=ts["time_s"].iloc[-1])
    energy_s = result.summary["energy"]
    carbon = float(np.dot(ts["power_facility_w"] * ts["carbon_g_per_kwh"], held)) / 3.6e9
    assert energy_s["carbon_kg"] == pytest.approx(carbon, rel=1e-9)
    hours = np.arange(0, result.summary["sim_time_s"], 3600.0)
    assert set(hours[1:]) <= set(ts["time_s"])  # a row at every change of hourly intensity
    parts = energy_s["by_component_kwh"]
    assert energy_s["facility_kwh"] == pytest.approx(sum(parts.values()), rel=1e-9)
    assert energy_s["cost"] == pytest.approx(energy_s["facility_kwh"] / 1000 * 50, rel=1e-9)
    jobs = result.jobs
    assert {"energy_it_kwh", "energy_facility_kwh", "carbon_kg", "energy_cost"} <= set(jobs.columns)
    assert 0 < jobs["energy_it_kwh"].sum() <= energy_s["it_kwh"]
    assert 0 < jobs["carbon_kg"].sum() <= energy_s["carbon_kg"]
    assert (jobs.loc[jobs["state"] == "completed", "carbon_kg"] > 0).all()


def test_without_new_fields_the_energy_section_is_unchanged(tmp_path: Path) -> None:
    result = _run_with(tmp_path, {"pue": 1.3, "carbon_intensity": 380})
    assert set(result.summary["energy"]) == {"it_kwh", "facility_kwh", "pue", "avg_power_kw", "peak_power_kw",
                                             "by_component_kwh", "carbon_kg"}
    assert "pue" not in result.timeseries and "carbon_kg" not in result.jobs


def test_constant_inputs_match_the_constant_pue_section(tmp_path: Path) -> None:
    plain = _run_with(tmp_path, {"pue": 1.3, "carbon_intensity": 380}).summary["energy"]
    started = _run_with(tmp_path, {"pue": 1.3, "carbon_intensity": 380, "start": "2022-01-01T00:00:00Z"})
    section = started.summary["energy"]
    for key in ("it_kwh", "facility_kwh", "pue", "carbon_kg", "peak_power_kw"):
        assert section[key] == pytest.approx(plain[key], rel=1e-9), key


def dcsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dcsim", *args], capture_output=True, text=True)


def test_bad_series_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "ci.csv").write_text("timestamp,ci\n2022-01-01T00:00Z,100\n2022-01-01T01:00Z,-5\n")
    energy = {"start": "2022-01-01T00:00:00Z",
              "carbon_intensity": {"file": "ci.csv", "value_column": "ci", "unit": "gCO2/kWh", "repeat": "none"}}
    path = write_yaml(tmp_path, tiny_scenario(energy=energy))
    out = tmp_path / "out"
    done = dcsim("run", str(path), "-o", str(out))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"error: {tmp_path / 'ci.csv'}: energy.carbon_intensity.ci: values must be >= 0, "
                                   "got -5 at data row 2")
    assert not out.exists()
    validated = dcsim("validate", str(path))
    assert validated.returncode == 2 and "values must be >= 0" in validated.stderr


@pytest.mark.skipif(not GRID.is_dir(), reason="shared data sustaindc-grid-weather is absent")
def test_hot_site_uses_more_cooling_and_water_than_a_mild_one(tmp_path: Path) -> None:
    results = {}
    for site in ("USA_AZ_Phoenix-Sky.Harbor.epw", "USA_WA_Seattle-Tacoma.epw"):
        energy = {"start": "2022-07-15T00:00:00-07:00", "weather": {"file": str(GRID / "weather" / site)},
                  "facility": {"cooling": {"kind": "air"}}}
        results[site] = _run_with(tmp_path, energy).summary["energy"]
    hot, mild = results["USA_AZ_Phoenix-Sky.Harbor.epw"], results["USA_WA_Seattle-Tacoma.epw"]
    assert hot["pue"] > mild["pue"] >= 1.0
    assert hot["free_cooling_hours"] < mild["free_cooling_hours"]
    # The Green Grid WUE: sites with evaporative towers report roughly 0.2 to 2.5 L/kWh (docs/energy.md)
    assert 0.2 < mild["wue_l_per_kwh"] < hot["wue_l_per_kwh"] < 3.0
    assert json.dumps(hot)  # plain JSON values


def test_serving_requests_carry_energy_and_carbon_at_their_time(tmp_path: Path) -> None:
    from tests.test_serving_engine import constant, scenario, service, synthetic

    # intensity 100 g/kWh for the first 10 minutes, 500 after: later requests cost 5x the carbon per joule
    (tmp_path / "ci.csv").write_text("timestamp,ci\n2022-01-01T00:00:00Z,100\n2022-01-01T00:10:00Z,500\n"
                                     "2022-01-01T00:20:00Z,500\n")
    energy = {"start": "2022-01-01T00:00:00Z", "pue": 1.25,
              "carbon_intensity": {"file": "ci.csv", "value_column": "ci", "unit": "gCO2/kWh"}}
    data = scenario([service(synthetic(400, "1/s", constant(200), constant(50)))], energy=energy)
    result = run(scenario_from_dict(data, "serve", str(tmp_path)))
    requests = result.requests
    done = requests[requests["state"] == "completed"]
    assert len(done) > 300 and (done["energy_it_j"] > 0).all()
    assert np.allclose(done["energy_facility_j"], 1.25 * done["energy_it_j"])
    early = done[done["end_s"] < 590]
    late = done[done["admitted_s"] > 610]
    per_joule_early = (early["carbon_g"] / early["energy_facility_j"]).to_numpy()
    per_joule_late = (late["carbon_g"] / late["energy_facility_j"]).to_numpy()
    assert np.allclose(per_joule_early, 100 / 3.6e6) and np.allclose(per_joule_late, 500 / 3.6e6)
    replicas_j = float(result.replicas["energy_j"].sum())
    assert float(done["energy_it_j"].sum()) == pytest.approx(replicas_j, rel=1e-9)  # every replica joule, once
    section = result.summary["energy"]
    tokens = float(done["output_tokens"].sum())
    assert section["serving_carbon_mg_per_output_token"] == pytest.approx(done["carbon_g"].sum() * 1e3 / tokens)
