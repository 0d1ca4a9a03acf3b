"""Series inputs from files: CSV (time column, value column, unit, time zone, repeat) and EPW weather,
aligned to the scenario's start so that run time 0 is `energy.start`.

Everything is checked once here, so the run never meets a bad value: a missing column or value,
unsorted or repeated times, a gap (a step over 1.5x the usual one), an unknown unit, a negative
intensity or price, a series that starts after the run or ends before its horizon. Each problem is one
line naming the file and the field (SeriesError, exit 2), raised while building, before anything is written.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from dcsim.energy.psychrometrics import wet_bulb_from_dew_point
from dcsim.energy.series import TimeSeries
from dcsim.errors import DcsimError, clip, excerpt

if TYPE_CHECKING:
    from dcsim.scenario.energy import Energy, SeriesFile, Weather

DAY_S = 86400.0
YEAR_S = 365 * DAY_S
GAP_FACTOR = 1.5  # a step longer than this times the usual step is a gap
Quantity = Literal["carbon", "price", "temperature"]

# unit text (lower case, spaces removed) -> factor to the internal unit
_CARBON_UNITS = {"gco2/kwh": 1.0, "gco2e/kwh": 1.0, "kgco2/mwh": 1.0, "kgco2e/mwh": 1.0, "g/kwh": 1.0,
                 "lbco2/mwh": 0.45359237, "lbco2e/mwh": 0.45359237, "tco2/mwh": 1000.0, "kgco2/kwh": 1000.0}


class SeriesError(DcsimError):
    """A series file that cannot be used: one line naming the file and field."""


@dataclass(frozen=True)
class EnergyInputs:
    """The series a run uses, on run time (seconds since energy.start)."""

    carbon: TimeSeries  # gCO2/kWh
    price: TimeSeries | None  # currency per MWh
    dry_bulb: TimeSeries | None  # degC
    wet_bulb: TimeSeries | None  # degC
    currency: str = "USD"

    def all_series(self) -> list[TimeSeries]:
        return [s for s in (self.carbon, self.price, self.dry_bulb, self.wet_bulb) if s is not None]

    def named(self) -> dict[str, TimeSeries]:
        found = {"carbon_intensity": self.carbon, "price": self.price, "weather": self.dry_bulb}
        return {name: series for name, series in found.items() if series is not None}


def energy_inputs(energy: Energy, base_dir: str | Path = ".", horizon: float | None = None) -> EnergyInputs:
    """Read every series of the `energy:` section (numbers become constant series)."""
    from dcsim.scenario.energy import SeriesFile

    start = energy.start
    carbon = energy.carbon_intensity
    carbon_series = (load_series(carbon, "energy.carbon_intensity", "carbon", base_dir, start, horizon)
                     if isinstance(carbon, SeriesFile) else TimeSeries.constant(float(carbon), "gCO2/kWh"))
    price = energy.price
    price_series = None
    if isinstance(price, SeriesFile):
        price_series = load_series(price, "energy.price", "price", base_dir, start, horizon)
    elif price is not None:
        price_series = TimeSeries.constant(float(price), f"{energy.currency}/MWh")
    dry = wet = None
    if energy.weather is not None:
        dry, wet = load_weather(energy.weather, base_dir, start, horizon)
    return EnergyInputs(carbon_series, price_series, dry, wet, energy.currency)


def load_series(spec: SeriesFile, field: str, quantity: Quantity, base_dir: str | Path,
                start: dt.datetime | None, horizon: float | None) -> TimeSeries:
    """One CSV series, converted to the internal unit and aligned to `start`."""
    path = Path(base_dir) / spec.file
    where = f"{path}: {field}"
    factor, unit = _unit(spec.unit, quantity, where)
    epoch, columns, held = _read_csv(path, spec.time_column, [spec.value_column], spec.time_zone, where,
                                     spec.missing == "hold")
    values = columns[spec.value_column] * factor
    if quantity == "temperature":
        values = _to_celsius(columns[spec.value_column], spec.unit)
    elif (values < 0).any():
        row = int(np.argmax(values < 0))
        raise SeriesError(f"{where}.{spec.value_column}: values must be >= 0, got {columns[spec.value_column][row]:g} "
                          f"at data row {row + 1}")
    series = _align(epoch, values, unit, spec.repeat, spec.time_zone, start, horizon, where)
    series.held_rows = held
    return series


def load_weather(weather: Weather, base_dir: str | Path, start: dt.datetime | None,
                 horizon: float | None) -> tuple[TimeSeries, TimeSeries]:
    """Dry-bulb and wet-bulb temperature series (degC) from an EPW file, a CSV file or constants."""
    if weather.file is None:
        assert weather.dry_bulb is not None and weather.wet_bulb is not None  # checked by the schema
        return TimeSeries.constant(weather.dry_bulb, "degC"), TimeSeries.constant(weather.wet_bulb, "degC")
    path = Path(base_dir) / weather.file
    where = f"{path}: energy.weather"
    if path.suffix.lower() == ".epw":
        epoch_like, dry, dew, zone = _read_epw(path, where)
        wet = wet_bulb_from_dew_point(dry, dew)
        repeat = weather.repeat or "year"
        if repeat != "year":
            raise SeriesError(f"{where}.repeat: an EPW file is one typical year; use repeat: year, got {repeat}")
        dry_s = _align_year(epoch_like, dry, "degC", zone, start, where)
        wet_s = _align_year(epoch_like, wet, "degC", zone, start, where)
        return dry_s, wet_s
    assert weather.dry_bulb_column is not None and weather.unit is not None  # checked by the schema
    humidity = weather.wet_bulb_column or weather.dew_point_column
    assert humidity is not None
    _unit(weather.unit, "temperature", where)
    epoch, columns, _ = _read_csv(path, weather.time_column, [weather.dry_bulb_column, humidity],
                                  weather.time_zone, where, hold_missing=False)
    dry = _to_celsius(columns[weather.dry_bulb_column], weather.unit)
    second = _to_celsius(columns[humidity], weather.unit)
    wet = second if weather.wet_bulb_column else wet_bulb_from_dew_point(dry, second)
    wet = np.minimum(wet, dry)
    repeat = weather.repeat or "none"
    return (_align(epoch, dry, "degC", repeat, weather.time_zone, start, horizon, where),
            _align(epoch, wet, "degC", repeat, weather.time_zone, start, horizon, where))


# --- units ---------------------------------------------------------------------------------------


def _unit(text: str, quantity: Quantity, where: str) -> tuple[float, str]:
    key = text.replace(" ", "").lower()
    if quantity == "carbon":
        if key in _CARBON_UNITS:
            return _CARBON_UNITS[key], "gCO2/kWh"
        raise SeriesError(f"{where}.unit: expected a carbon intensity unit (gCO2/kWh, kgCO2/MWh, lbCO2/MWh), "
                          f"got {excerpt(text)}")
    if quantity == "price":
        currency, _, energy_unit = text.replace(" ", "").partition("/")
        factors = {"mwh": 1.0, "kwh": 1000.0}
        if currency and energy_unit.lower() in factors:
            return factors[energy_unit.lower()], f"{currency}/MWh"
        raise SeriesError(f"{where}.unit: expected a price per energy (e.g. USD/MWh, EUR/kWh), got {excerpt(text)}")
    if key in ("degc", "c", "celsius", "degf", "f", "fahrenheit", "k", "kelvin"):
        return 1.0, "degC"
    raise SeriesError(f"{where}.unit: expected a temperature unit (degC, degF, K), got {excerpt(text)}")


def _to_celsius(values: np.ndarray, unit: str) -> np.ndarray:
    key = unit.replace(" ", "").lower()
    if key in ("degf", "f", "fahrenheit"):
        return (values - 32.0) * 5.0 / 9.0
    if key in ("k", "kelvin"):
        return values - 273.15
    return values


# --- reading -------------------------------------------------------------------------------------


def _read_csv(path: Path, time_column: str, value_columns: list[str], time_zone: str | None,
              where: str, hold_missing: bool) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Epoch seconds (UTC) of each row, the named value columns as floats (every cell checked) and how
    many empty cells took the value before them (`hold_missing`; otherwise an empty cell is an error)."""
    import pandas as pd

    if not path.is_file():
        raise SeriesError(f"{where}: series file not found" if not path.exists()
                          else f"{where}: not a regular file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SeriesError(f"{where}: not a readable CSV file: {clip(str(exc).splitlines()[0], 200)}") from None
    for column in [time_column, *value_columns]:
        if column not in frame.columns:
            raise SeriesError(f"{where}: no column {excerpt(column)} (columns: {clip(', '.join(frame.columns))})")
    if frame.empty:
        raise SeriesError(f"{where}: no data rows")
    values: dict[str, np.ndarray] = {}
    held = 0
    for column in value_columns:
        cells = frame[column].str.strip()
        numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
        empty = (cells == "").to_numpy()
        if hold_missing and empty.any() and not empty[0]:
            held += int(empty.sum())
            numbers = pd.Series(numbers).ffill().to_numpy(dtype=float)
        bad = ~np.isfinite(numbers)
        if bad.any():
            row = int(np.argmax(bad))
            raise SeriesError(f"{where}.{column}: data row {row + 1}: expected a number, "
                              f"got {excerpt(frame[column].iloc[row])} (a series may not have gaps; "
                              f"missing: hold keeps the value before an empty cell)")
        values[column] = numbers
    texts = frame[time_column].str.strip()
    stamps = pd.to_datetime(texts, format="ISO8601", errors="coerce", utc=True)
    if stamps.isna().any():
        row = int(np.argmax(stamps.isna().to_numpy()))
        raise SeriesError(f"{where}.{time_column}: data row {row + 1}: expected an ISO 8601 date-time, "
                          f"got {excerpt(texts.iloc[row])}")
    has_offset = texts.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    if not has_offset.all():
        if time_zone is None:
            raise SeriesError(f"{where}.time_zone: times without an offset need time_zone "
                              f"(e.g. UTC or America/Chicago), first such time {excerpt(texts[~has_offset].iloc[0])}")
        zone = _zone(time_zone, where)
        naive = pd.to_datetime(texts[~has_offset], format="ISO8601", errors="coerce")
        try:
            local = naive.dt.tz_localize(zone, ambiguous="raise", nonexistent="raise").dt.tz_convert("UTC")
        except (ValueError, TypeError) as exc:  # pytz/zoneinfo errors on DST changes are ValueErrors
            raise SeriesError(f"{where}.{time_column}: a local time is ambiguous or skipped at a daylight-saving "
                              f"change ({clip(str(exc), 80)}); give times with offsets") from None
        stamps = stamps.where(has_offset, local)
    epoch = (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    _check_steps(epoch, where, time_column, texts.to_numpy())
    return epoch, values, held


def _check_steps(epoch: np.ndarray, where: str, time_column: str, texts: np.ndarray) -> None:
    steps = np.diff(epoch)
    if steps.size and (steps <= 0).any():
        row = int(np.argmax(steps <= 0)) + 1
        raise SeriesError(f"{where}.{time_column}: times must increase; data row {row + 1} "
                          f"({excerpt(texts[row])}) is not after the row before ({excerpt(texts[row - 1])})")
    if steps.size:
        usual = float(np.median(steps))
        long = steps > GAP_FACTOR * usual
        if long.any():
            row = int(np.argmax(long)) + 1
            raise SeriesError(f"{where}.{time_column}: gap of {steps[row - 1] / 3600:g} h before data row {row + 1} "
                              f"({excerpt(texts[row])}); the usual step is {usual / 3600:g} h")


def _zone(name: str, where: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SeriesError(f"{where}.time_zone: unknown time zone {excerpt(name)} "
                          f"(expected an IANA name such as UTC or Europe/Paris)") from None


def _epw_row_ok(row: list[str]) -> bool:
    try:
        [float(row[i]) for i in (1, 2, 3, 6, 7)]
    except (IndexError, ValueError):
        return False
    return True


def _read_epw(path: Path, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dt.tzinfo]:
    """Seconds since 1 January 00:00 (local standard time) of each hour, dry bulb, dew point (degC), zone."""
    if not path.is_file():
        raise SeriesError(f"{where}.file: weather file not found")
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise SeriesError(f"{where}.file: cannot read: {exc.strerror or exc}") from None
    header = lines[0].split(",") if lines else []
    if len(header) < 10 or header[0] != "LOCATION":
        raise SeriesError(f"{where}.file: not an EPW file (the first line must be LOCATION,...)")
    try:
        offset_h = float(header[8])
    except ValueError:
        raise SeriesError(f"{where}.file: LOCATION time zone is not a number: {excerpt(header[8])}") from None
    rows = [line.split(",", 8)[:8] for line in lines[8:] if line.strip()]  # the first 8 fields are enough
    if len(rows) != 8760:
        raise SeriesError(f"{where}.file: expected 8760 hourly rows after the 8 header lines, got {len(rows)}")
    try:
        table = np.asarray([(row[1], row[2], row[3], row[6], row[7]) for row in rows], dtype=float)
    except (IndexError, ValueError):
        index = next(i for i, row in enumerate(rows) if not _epw_row_ok(row))
        raise SeriesError(f"{where}.file: data row {index + 1}: expected month, day, hour, dry bulb and dew "
                          f"point numbers") from None
    month, day, hour = table[:, 0].astype(int), table[:, 1].astype(int), table[:, 2].astype(int)
    dry, dew = table[:, 3], table[:, 4]
    bad = (month < 1) | (month > 12) | (day < 1) | (day > 31) | (hour < 1) | (hour > 24)
    if bad.any():
        index = int(np.argmax(bad))
        raise SeriesError(f"{where}.file: data row {index + 1}: date {month[index]}/{day[index]} hour {hour[index]} "
                          "out of range")
    month_start = np.cumsum([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30])
    seconds = (month_start[month - 1] + day - 1) * DAY_S + (hour - 1) * 3600.0  # hour ending
    for name, column in (("dry bulb", dry), ("dew point", dew)):
        if (column >= 99.9).any():  # the EPW missing-value marker
            row = int(np.argmax(column >= 99.9))
            raise SeriesError(f"{where}.file: data row {row + 1}: {name} is missing (99.9); a series may not have gaps")
    _check_steps(seconds, where, "file", np.asarray([f"row {i + 1}" for i in range(8760)]))
    return seconds, dry, dew, dt.timezone(dt.timedelta(hours=offset_h))


# --- alignment -----------------------------------------------------------------------------------


def _align(epoch: np.ndarray, values: np.ndarray, unit: str, repeat: str, time_zone: str | None,
           start: dt.datetime | None, horizon: float | None, where: str) -> TimeSeries:
    if start is None:
        raise SeriesError(f"{where}: series inputs need energy.start")
    zone = _zone(time_zone, where) if time_zone else dt.UTC
    start_epoch = start.timestamp()
    if repeat == "none":
        times = epoch - start_epoch
        if times[0] > 0:
            raise SeriesError(f"{where}: the series starts {_stamp(epoch[0])}, "
                              f"after energy.start ({start.isoformat()})")
        step = float(np.median(np.diff(epoch))) if epoch.size > 1 else 0.0
        if horizon is not None and times[-1] + step < horizon:
            raise SeriesError(f"{where}: the series ends {_stamp(epoch[-1] + step)}, before the run's horizon "
                              f"({horizon / 3600:g} h after energy.start)")
        series = TimeSeries(times, values, unit)
        series.data_until = float(times[-1] + step)
        return series
    first = dt.datetime.fromtimestamp(epoch[0], dt.UTC).astimezone(zone)
    if repeat == "day":
        origin = first.replace(hour=0, minute=0, second=0, microsecond=0)
        local_start = start.astimezone(zone)
        phase = (local_start - local_start.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
        return _periodic(epoch - origin.timestamp(), values, unit, DAY_S, phase, where)
    origin = first.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return _align_year(epoch - origin.timestamp(), values, unit, zone, start, where)


def _align_year(seconds: np.ndarray, values: np.ndarray, unit: str, zone: dt.tzinfo, start: dt.datetime | None,
                where: str) -> TimeSeries:
    """A one-year series (seconds since 1 January 00:00 in `zone`) repeating; 29 February reads 1 March."""
    if start is None:
        raise SeriesError(f"{where}: series inputs need energy.start")
    local = start.astimezone(zone)
    phase = (local - local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)).total_seconds()
    if local.year % 4 == 0 and (local.year % 100 != 0 or local.year % 400 == 0) and local.month > 2:
        phase -= DAY_S
    period = YEAR_S if seconds[-1] < YEAR_S else YEAR_S + DAY_S
    return _periodic(seconds, values, unit, period, phase, where)


def _periodic(seconds: np.ndarray, values: np.ndarray, unit: str, period: float, phase: float,
              where: str) -> TimeSeries:
    """One period of values at `seconds` since the period's origin, checked to cover the whole period."""
    step = float(np.median(np.diff(seconds))) if seconds.size > 1 else period
    span = seconds[-1] - seconds[0] + step
    if abs(span - period) > 1.0:
        raise SeriesError(f"{where}: a repeating series must cover exactly one {_name(period)} "
                          f"({period / 3600:g} h), this one covers {span / 3600:g} h")
    position = np.mod(seconds, period)
    order = np.argsort(position, kind="stable")
    position, ordered = position[order], values[order]
    if position[0] > 0:  # the period's first stretch holds the value that wrapped round from its end
        position = np.concatenate(([0.0], position))
        ordered = np.concatenate(([ordered[-1]], ordered))
    return TimeSeries(position, ordered, unit, period=period, phase=phase)


def _name(period: float) -> str:
    return "day" if period == DAY_S else "year"


def _stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()
