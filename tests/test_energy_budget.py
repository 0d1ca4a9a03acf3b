"""A power policy's budget in the energy summary and chart (issue 17): the governor's budget limits IT
power, so it is reported and drawn against IT power, following demand-response windows over time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from dcsim.reporting import charts as chart_module
from dcsim.reporting import energy_charts
from dcsim.reporting.charts import time_unit
from dcsim.results import RunResult
from dcsim.runner import run
from dcsim.scenario import scenario_from_dict
from tests.helpers import ROOT, tiny_scenario


def _one_v100_with_energy(power: dict[str, Any]) -> dict[str, Any]:
    """One V100 (host 100 W idle and busy) running one 1 h job from t = 1 h (its arrival), with air
    cooling (so the energy subsystem and its facility power are on) and the given power policy."""
    data = tiny_scenario()
    data["cluster"] = {"node_pools": [{"name": "v", "count": 1, "accelerator": "V100", "accelerators_per_node": 1,
                                       "host_power": {"idle": "100W", "busy": "100W"}}]}
    data["workload"]["training"] = {
        "source": "synthetic", "jobs": 1, "arrival": {"process": "constant", "rate": "1/h"},
        "accelerators": {"values": [1]}, "duration": {"distribution": "constant", "value": "1h"},
        "models": {"ResNet-50": 1}, "reference_accelerator": "V100"}
    data["energy"] = {"facility": {"cooling": {"kind": "air"}}, "weather": {"dry_bulb": 30.0, "wet_bulb": 20.0}}
    data["policies"]["power"] = power
    return data


def _run(data: dict[str, Any]) -> Any:
    return run(scenario_from_dict(data, "<test>", str(ROOT)))


WINDOW = {"name": "demand_response", "params": {"windows": [{"start": "01:15", "end": "01:45", "budget": "220W"}],
                                                 "levels": 0}}


def test_budget_is_set_against_it_power_not_facility_power() -> None:
    """Inside the window the governor holds IT power to 220 W (the accelerator capped); facility power is
    above 220 W there (cooling and losses on top), which is no breach: the budget limits IT power."""
    result = _run(_one_v100_with_energy(WINDOW))
    energy, ts = result.summary["energy"], result.timeseries
    assert energy["it_power_budget_kw"] == pytest.approx(0.22)
    inside = (ts["time_s"] >= 4500) & (ts["time_s"] < 6300)
    assert inside.any()
    assert (ts.loc[inside, "power_it_w"] <= 220.0 + 1e-6).all()
    assert ts.loc[inside, "power_facility_w"].max() > 220.0  # facility above the budget: not compared
    assert ts["power_it_w"].max() > 220.0  # outside the window the job runs uncapped, with no budget
    assert energy["peak_over_budget"] is False
    assert result.summary["power"]["over_budget_s"] == 0


def test_budget_that_cannot_be_met_shows_as_over() -> None:
    """min_cap 1.0 forbids any cap below TDP, so the computing V100 stays above a 220 W budget (it draws
    well over 120 W): IT power is over the budget, and the energy and power sections agree."""
    result = _run(_one_v100_with_energy({"name": "budget", "params": {"budget": "220W", "min_cap": 1.0}}))
    assert result.timeseries["power_it_w"].max() > 220.0
    assert result.summary["energy"]["peak_over_budget"] is True
    assert result.summary["power"]["peak_over_budget_w"] > 0
    assert result.summary["power"]["over_budget_s"] == pytest.approx(3600.0, rel=1e-6)


def test_chart_draws_the_budget_in_force_from_saved_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """energy_power.png, drawn from a saved and reloaded results folder: the dashed line is the budget in
    force over time (220 W inside the window, none outside), labelled as the IT power budget."""
    result = _run(_one_v100_with_energy(WINDOW))
    result.save(tmp_path / "run")
    loaded = RunResult.load(tmp_path / "run")
    drawn: list[Figure] = []
    keep = lambda fig, path: drawn.append(fig) or path  # noqa: E731
    monkeypatch.setattr(energy_charts, "save", keep)
    monkeypatch.setattr(chart_module, "save", keep)  # single-axis time charts end in charts.finish_time_chart
    charts = dict(energy_charts.energy_charts(loaded))
    charts["energy_power.png"](tmp_path / "energy_power.png")
    (ax,) = drawn[0].axes
    (line,) = [line for line in ax.get_lines() if "budget" in str(line.get_label())]
    assert line.get_label() == "IT power budget (caps IT power)"
    times, kw = (np.asarray(v, dtype=float) for v in line.get_data())
    scale, _ = time_unit(float(loaded.timeseries["time_s"].iloc[-1]))  # the chart's time unit
    seconds = times * scale
    assert kw[(seconds >= 4500) & (seconds < 6300)] == pytest.approx(0.22)
    assert np.isnan(kw[seconds < 4500]).all()
    assert np.isnan(kw[seconds >= 6300]).all()
