"""TimeSeries lookups against a naive implementation, and the series loader on small files and real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcsim.energy.loading import SeriesError, energy_inputs
from dcsim.energy.series import TimeSeries
from dcsim.scenario.energy import Energy

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sustaindc-grid-weather"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/sustaindc-grid-weather")


def naive_at(times: list[float], values: list[float], t: float, period: float | None, phase: float) -> float:
    """The value by a linear scan: the last point at or before t (the first before any point)."""
    position = (t + phase) % period if period is not None else t
    found = values[0]
    for time, value in zip(times, values, strict=True):
        if time <= position:
            found = value
    return found


def naive_integral(times: list[float], values: list[float], t0: float, t1: float, period: float | None,
                   phase: float) -> float:
    """Midpoint sum on a grid fine enough to land on every breakpoint (all are multiples of 0.25)."""
    step = 0.25
    grid = np.arange(t0, t1, step)
    return float(sum(naive_at(times, values, g + step / 2, period, phase) for g in grid) * step)


points = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)), min_size=1, max_size=8, unique_by=lambda p: p[0])


@settings(max_examples=60, deadline=None)
@given(points, st.booleans(), st.integers(0, 47), st.integers(-8, 60), st.integers(0, 30))
def test_lookups_match_a_naive_scan(raw: list[tuple[int, int]], repeating: bool, phase_q: int, t0_q: int,
                                    length_q: int) -> None:
    raw = sorted(raw)
    times = [float(t) for t, _ in raw]
    values = [float(v) for _, v in raw]
    period = None
    phase = 0.0
    if repeating:
        times[0] = 0.0
        period = 48.0
        phase = phase_q * 1.0
        if len(times) > 1 and times[1] == 0.0:
            return
    series = TimeSeries(times, values, "u", period=period, phase=phase)
    t0 = t0_q * 0.5 if repeating else t0_q * 1.0
    t1 = t0 + length_q * 1.0
    for t in np.arange(t0, t1 + 1, 0.5):
        assert series.at(float(t)) == naive_at(times, values, float(t), period, phase)
    assert series.integral(t0, t1) == pytest.approx(naive_integral(times, values, t0, t1, period, phase), abs=1e-9)
    if t1 > t0:
        assert series.mean(t0, t1) == pytest.approx(series.integral(t0, t1) / (t1 - t0))
    change = series.next_change(t0)
    if math.isinf(change):
        assert all(naive_at(times, values, t0 + k * 0.25, period, phase) == series.at(t0) for k in range(400))
    else:
        assert change > t0
        assert series.at(change) != series.at(t0)
        probe = np.arange(t0, change, 0.25)
        assert all(naive_at(times, values, float(p), period, phase) == series.at(t0) for p in probe)
    inner = series.changes_between(t0, t1)
    assert list(inner) == sorted(inner)
    expected = [float(p) for p in np.arange(t0 + 0.25, t1, 0.25)
                if naive_at(times, values, float(p), period, phase) != naive_at(times, values, float(p) - 0.25,
                                                                                period, phase)]
    assert list(inner) == pytest.approx(expected)


def test_vectorised_at_and_integral() -> None:
    series = TimeSeries([0.0, 10.0, 20.0], [1.0, 3.0, 2.0], "u")
    assert list(series.at(np.array([-5.0, 0.0, 9.9, 10.0, 25.0]))) == [1.0, 1.0, 1.0, 3.0, 2.0]
    assert list(series.integral(np.array([0.0, 5.0]), np.array([20.0, 30.0]))) == [40.0, 5 + 30 + 20]
    assert TimeSeries.constant(7.0, "u").next_change(1e9) == math.inf
    assert TimeSeries.constant(7.0, "u").mean(3.0, 3.0) == 7.0


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _energy(spec: dict[str, object], start: str = "2022-01-01T00:00:00+00:00") -> Energy:
    return Energy.model_validate({"start": start, "carbon_intensity": spec})


def test_csv_alignment_time_zone_and_units(tmp_path: Path) -> None:
    _csv(tmp_path / "ci.csv", "t,ci\n2022-01-01T00:00,0.1\n2022-01-01T01:00,0.2\n2022-01-01T02:00,0.3\n")
    spec = {"file": "ci.csv", "time_column": "t", "value_column": "ci", "unit": "kgCO2/kWh",
            "time_zone": "America/Chicago"}
    # 07:00 UTC is 01:00 in Chicago (UTC-6 in January): the run starts at the second row
    series = energy_inputs(_energy(spec, "2022-01-01T07:00:00+00:00"), tmp_path, horizon=7200.0).carbon
    assert series.at(0.0) == pytest.approx(200.0)
    assert series.next_change(0.0) == 3600.0
    assert series.at(3600.0) == pytest.approx(300.0)


def test_a_run_past_the_end_of_a_series_is_reported(tmp_path: Path) -> None:
    from dcsim.energy.accounting import add_energy_columns, energy_section, refine
    from tests.test_energy_accounting import _frame

    _csv(tmp_path / "ci.csv", "timestamp,ci\n2022-01-01T00:00Z,100\n2022-01-01T01:00Z,200\n")
    energy = _energy({"file": "ci.csv", "value_column": "ci", "unit": "gCO2/kWh"})
    inputs = energy_inputs(energy, tmp_path)  # no horizon: the loader cannot know the run's end
    assert inputs.carbon.data_until == 7200.0
    frame = add_energy_columns(refine(_frame([0.0, 9000.0], [1000.0, 1000.0]), inputs, 9000.0), inputs, energy)
    section = energy_section(frame, 9000.0, inputs, energy, None, None)
    assert section["series_beyond_data_s"] == {"carbon_intensity": 1800.0}
    with pytest.raises(SeriesError, match="before the run's horizon"):
        energy_inputs(energy, tmp_path, horizon=9000.0)


def test_daily_repeat_aligns_by_time_of_day(tmp_path: Path) -> None:
    rows = "".join(f"2022-03-01T{h:02d}:00:00Z,{100 + h}\n" for h in range(24))
    _csv(tmp_path / "day.csv", "timestamp,ci\n" + rows)
    spec = {"file": "day.csv", "value_column": "ci", "unit": "gCO2/kWh", "repeat": "day"}
    series = energy_inputs(_energy(spec, "2023-06-10T22:30:00+00:00"), tmp_path).carbon
    assert series.at(0.0) == 122.0
    assert series.next_change(0.0) == 1800.0
    assert series.at(1800.0 + 3600.0) == 100.0  # 00:00 next day
    assert series.mean(0.0, 86400.0) == pytest.approx(sum(100 + h for h in range(24)) / 24)


@pytest.mark.parametrize(("text", "extra", "message"), [
    ("timestamp,ci\n2022-01-01T01:00Z,1\n2022-01-01T00:00Z,2\n", {}, "times must increase"),
    ("timestamp,ci\n2022-01-01T00:00Z,1\n2022-01-01T01:00Z,2\n2022-01-01T05:00Z,2\n", {}, "gap of 4 h"),
    ("timestamp,ci\n2022-01-01T00:00Z,1\n2022-01-01T01:00Z,\n", {}, "expected a number"),
    ("timestamp,ci\n2022-01-01T00:00Z,1\n2022-01-01T01:00Z,-3\n", {}, "values must be >= 0"),
    ("timestamp,ci\n2022-01-01T00:00,1\n2022-01-01T01:00,2\n", {}, "need time_zone"),
    ("timestamp,ci\n2022-01-01T00:00Z,1\n", {"unit": "g"}, "expected a carbon intensity unit"),
    ("timestamp,x\n2022-01-01T00:00Z,1\n", {}, "no column 'ci'"),
    ("timestamp,ci\n2022-01-02T00:00Z,1\n2022-01-02T01:00Z,2\n", {}, "after energy.start"),
    ("timestamp,ci\n2022-01-01T00:00Z,1\n2022-01-01T01:00Z,2\n", {"repeat": "day"}, "cover exactly one day"),
])
def test_bad_series_is_one_line_naming_file_and_field(tmp_path: Path, text: str, extra: dict[str, str],
                                                      message: str) -> None:
    _csv(tmp_path / "bad.csv", text)
    spec = {"file": "bad.csv", "value_column": "ci", "unit": "gCO2/kWh", **extra}
    with pytest.raises(SeriesError) as caught:
        energy_inputs(_energy(spec), tmp_path)
    line = str(caught.value)
    assert "\n" not in line and "bad.csv" in line and "energy.carbon_intensity" in line and message in line


def test_missing_units_is_a_schema_error() -> None:
    with pytest.raises(ValueError, match="unit"):
        _energy({"file": "x.csv", "value_column": "ci"})


def test_hold_counts_the_empty_cells(tmp_path: Path) -> None:
    _csv(tmp_path / "ci.csv", "timestamp,ci\n2022-01-01T00:00Z,1\n2022-01-01T01:00Z,\n2022-01-01T02:00Z,5\n")
    spec = {"file": "ci.csv", "value_column": "ci", "unit": "gCO2/kWh", "missing": "hold"}
    series = energy_inputs(_energy(spec), tmp_path).carbon
    assert series.held_rows == 1
    assert series.at(5000.0) == 1.0 and series.at(7200.0) == 5.0


@pytest.mark.skipif(not DATA.is_dir(), reason="shared data sustaindc-grid-weather is absent")
def test_real_carbon_and_weather_series() -> None:
    energy = Energy.model_validate({
        "start": "2022-07-01T00:00:00-07:00",
        "carbon_intensity": {"file": str(DATA / "carbon_intensity" / "CISO.csv"), "value_column": "avg_CI",
                             "unit": "gCO2/kWh", "repeat": "year", "missing": "hold"},
        "weather": {"file": str(DATA / "weather" / "USA_AZ_Phoenix-Sky.Harbor.epw")}})
    inputs = energy_inputs(energy)
    assert inputs.carbon.held_rows == 3
    # 2022-07-01 07:00 UTC row of CISO.csv
    row = next(line for line in (DATA / "carbon_intensity" / "CISO.csv").read_text().splitlines()
               if line.startswith("2022-07-01 07:00"))
    assert inputs.carbon.at(0.0) == pytest.approx(float(row.split(",")[-1]))
    assert inputs.carbon.next_change(0.0) == 3600.0
    assert inputs.dry_bulb is not None and inputs.wet_bulb is not None
    hot = inputs.dry_bulb.at(np.arange(0.0, 30 * 86400.0, 3600.0))
    assert 25 < hot.mean() < 40  # Phoenix in July
    assert (inputs.wet_bulb.at(np.arange(0.0, 30 * 86400.0, 3600.0)) <= hot).all()


def _epw(path: Path, rows: list[str]) -> Path:
    header = ["LOCATION,Somewhere,XX,USA,TMY,0,40.0,-100.0,-6.0,300"] + ["HEADER"] * 7
    path.write_text("\n".join(header + rows) + "\n")
    return path


def test_epw_weather_by_hand_and_its_errors(tmp_path: Path) -> None:
    rows = []
    month_days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    for month, days in enumerate(month_days, start=1):
        for day in range(1, days + 1):
            for hour in range(1, 25):
                dry = 10.0 + month  # one temperature per month, dew point 5 K below
                rows.append(f"1999,{month},{day},{hour},0,flags,{dry:.1f},{dry - 5:.1f},70")
    _epw(tmp_path / "w.epw", rows)
    energy = Energy.model_validate({"start": "2022-03-31T23:00:00-06:00", "weather": {"file": "w.epw"}})
    inputs = energy_inputs(energy, tmp_path)
    assert inputs.dry_bulb is not None and inputs.wet_bulb is not None
    assert inputs.dry_bulb.at(0.0) == 13.0 and inputs.dry_bulb.next_change(0.0) == 3600.0  # 1 April 00:00
    assert inputs.dry_bulb.at(3600.0) == 14.0
    assert 14.0 - 5 < inputs.wet_bulb.at(3600.0) < 14.0  # between dew point and dry bulb
    _epw(tmp_path / "short.epw", rows[:10])
    with pytest.raises(SeriesError, match=r"short.epw: energy.weather.file: expected 8760 hourly rows"):
        energy_inputs(Energy.model_validate({"start": "2022-01-01T00:00:00Z", "weather": {"file": "short.epw"}}),
                      tmp_path)
    broken = list(rows)
    broken[100] = "1999,1,5,5,0,flags,x,1,70"
    _epw(tmp_path / "bad.epw", broken)
    with pytest.raises(SeriesError, match="data row 101: expected month, day, hour, dry bulb and dew point"):
        energy_inputs(Energy.model_validate({"start": "2022-01-01T00:00:00Z", "weather": {"file": "bad.epw"}}),
                      tmp_path)
