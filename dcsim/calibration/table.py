"""The measurement table: one documented CSV format for every kind of measured model run.

The shipped catalog is fitted from this table (tools/build_catalog.py converts ../shared/data into
it) and `dcsim calibration fit` fits the same models to a user's own file, so both paths share one
reader, one set of checks and one set of fitters.

Columns (header names exact; only kind, model, accelerator and time are required):

    kind          training | prefill | decode | linear | power_cap
    model         catalog model name or alias, or llm-<N>b (see `dcsim calibration list`)
    accelerator   catalog accelerator name or alias
    count         accelerators used (training: data-parallel workers; prefill/decode/linear: tensor
                  parallelism), default 1
    nodes         nodes those accelerators span, default 1
    batch         training: samples per accelerator per step; prefill/decode: requests in the batch
                  (may be fractional, e.g. a mean batch); default 1
    tokens        training an LLM: tokens per sample; prefill: prompt tokens per request; decode: mean
                  context tokens per request; linear: tokens in the forward pass
    power_cap     accelerator power limit in force, e.g. "250W" (empty = none)
    time          training: step time; prefill: time to prefill the whole batch; decode: one decode
                  iteration (time per output token); linear: forward time of the linear layers of all
                  layers; power_cap: time for a fixed amount of work (only ratios are used)
    sync_time     training: the exposed (not overlapped) synchronisation part of `time`
    power         mean power per accelerator during the measurement, e.g. "310W"
    params        override the model's parameter count (LLMs not in the catalog)
    active_params parameters used per token, for mixture-of-experts models
    source        where the row comes from (default: the file name)

Times accept unit strings ("250ms") or plain seconds; powers accept "300W" or plain watts.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dcsim import units
from dcsim.catalog import Catalog, ModelSpec, load_catalog, parameterised_llm
from dcsim.errors import CalibrationError, CatalogError, UnitError, clip, excerpt
from dcsim.inputs import InputError, read_text

KINDS = ("training", "prefill", "decode", "linear", "power_cap")
REQUIRED = ("kind", "model", "accelerator", "time")
NUMBER_COLUMNS = ("count", "nodes", "batch", "tokens", "power_cap", "time", "sync_time", "power", "params",
                  "active_params")
COLUMNS = ("kind", "model", "accelerator", *NUMBER_COLUMNS, "source")
NEEDS_TOKENS = ("prefill", "decode", "linear")


def read_measurements(path: Path, catalog: Catalog | None = None) -> pd.DataFrame:
    """Read and check a measurement CSV; any bad cell fails with file, line and column."""
    catalog = catalog or load_catalog()
    try:
        text = read_text(path)  # a regular, bounded UTF-8 file
    except InputError as exc:
        raise CalibrationError(f"{path}: cannot read measurement file ({exc})") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise CalibrationError(f"{path}: empty measurement file; expected a header with columns {', '.join(REQUIRED)}")
    header_line, header = lines[0][0], next(csv.reader([lines[0][1]]))
    header = [name.strip() for name in header]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise CalibrationError(f"{path}:{header_line}: missing column{'s' if len(missing) > 1 else ''} "
                               f"{', '.join(missing)} (columns: {', '.join(COLUMNS)})")
    duplicate = next((name for i, name in enumerate(header) if name in header[:i]), None)
    if duplicate is not None:
        raise CalibrationError(f"{path}:{header_line}: duplicate column {excerpt(duplicate)}")
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise CalibrationError(f"{path}:{header_line}: unknown column {excerpt(unknown[0])} "
                               f"(columns: {', '.join(COLUMNS)})")
    rows: list[dict[str, Any]] = []
    for number, values in zip((n for n, _ in lines[1:]), csv.reader(line for _, line in lines[1:]), strict=True):
        if len(values) != len(header):
            raise CalibrationError(f"{path}:{number}: {len(values)} fields, the header has {len(header)}")
        raw = dict(zip(header, (value.strip() for value in values), strict=True))
        rows.append(check_row(raw, catalog, f"{path}:{number}", default_source=path.name))
    if not rows:
        raise CalibrationError(f"{path}: no measurement rows after the header")
    return measurement_frame(rows)


def check_row(raw: Mapping[str, Any], catalog: Catalog, where: str, default_source: str = "") -> dict[str, Any]:
    """One row of raw strings or numbers -> typed row in SI units, or a CalibrationError naming `where`."""

    def fail(column: str, expected: str) -> CalibrationError:
        got = f"got {excerpt(raw[column])}" if column in raw else "the column is missing"
        return CalibrationError(f"{where}: column {excerpt(column)}: expected {expected}, {got}")

    def blank(column: str) -> bool:
        value = raw.get(column)
        return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""

    def number(column: str, default: float, parse: Callable[[Any], float], expected: str,
               low: float, low_ok: bool) -> float:
        if blank(column):
            return default
        try:
            value = parse(raw[column])
        except (UnitError, ValueError, TypeError):
            raise fail(column, expected) from None
        if not math.isfinite(value) or value < low or (value == low and not low_ok):
            raise fail(column, expected)
        return value

    kind = str(raw.get("kind", "")).strip()
    if kind not in KINDS:
        raise fail("kind", f"one of {', '.join(KINDS)}")
    for column in ("model", "accelerator"):
        if blank(column):
            raise fail(column, "a name")
    try:
        accelerator = catalog.canonical_accelerator(str(raw["accelerator"]).strip())
    except CatalogError as exc:
        raise CalibrationError(f"{where}: column 'accelerator': {clip(str(exc), 300)}; a part the catalog lacks "
                               "needs its figures in a catalog overlay file (--catalog, docs/calibration.md)") from None
    seconds = lambda value: units.parse(value, "duration")  # noqa: E731
    watts = lambda value: units.parse(value, "power")  # noqa: E731
    row: dict[str, Any] = {
        "kind": kind, "model": str(raw["model"]).strip(), "accelerator": accelerator,
        "count": number("count", 1, _integer, "a whole number >= 1", 1, True),
        "nodes": number("nodes", 1, _integer, "a whole number >= 1", 1, True),
        "batch": number("batch", 1.0, float, "a number > 0", 0, False),
        "tokens": number("tokens", math.nan, float, "a number >= 0", 0, True),
        "power_cap": number("power_cap", math.nan, watts, 'a power > 0 like "250W"', 0, False),
        "time": number("time", math.nan, seconds, 'a time > 0 like "120ms" or seconds', 0, False),
        "sync_time": number("sync_time", math.nan, seconds, 'a time >= 0 like "5ms" or seconds', 0, True),
        "power": number("power", math.nan, watts, 'a power > 0 like "300W"', 0, False),
        "params": number("params", math.nan, float, "a parameter count > 0", 0, False),
        "active_params": number("active_params", math.nan, float, "a parameter count > 0", 0, False),
        "source": str(raw.get("source") or default_source).strip(),
    }
    if blank("time"):
        raise fail("time", 'a time > 0 like "120ms" or seconds')
    if row["nodes"] > row["count"]:
        raise fail("nodes", f"at most count ({int(row['count'])})")
    if row["sync_time"] > row["time"]:
        raise fail("sync_time", f"at most time ({row['time']:g} s)")
    if kind in NEEDS_TOKENS and math.isnan(row["tokens"]):
        raise fail("tokens", f"a token count for a {kind} row")
    if kind == "power_cap" and (math.isnan(row["power_cap"]) or math.isnan(row["power"])):
        raise fail("power_cap" if math.isnan(row["power_cap"]) else "power", "a power for a power_cap row")
    return row


def measurement_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows (already checked) -> the table with fixed column order and dtypes."""
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    for column in NUMBER_COLUMNS:
        frame[column] = frame[column].astype(float)
    for column in ("kind", "model", "accelerator", "source"):
        frame[column] = frame[column].astype(str)
    return frame


def write_measurements(frame: pd.DataFrame, path: Path) -> None:
    """Write the table in the documented format (SI units, empty cells for missing values)."""
    out = frame.loc[:, list(COLUMNS)].copy()
    for column in ("count", "nodes"):
        out[column] = out[column].astype(int)
    out.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")


def _integer(value: Any) -> float:
    number = float(value)
    if number != int(number):
        raise ValueError("not a whole number")
    return number


def row_model(row: Mapping[Any, Any], catalog: Catalog, custom: bool = False) -> ModelSpec:
    """The model a measurement row describes: the catalog entry, with the row's params overriding.

    With `custom`, a name the catalog does not know is a user's own network (family "custom")."""
    params, active = row.get("params", math.nan), row.get("active_params", math.nan)
    known = catalog.canonical_model(str(row["model"]))
    if known is not None:
        spec = catalog.models[known]
    elif isinstance(params, float) and not math.isnan(params):
        spec = ModelSpec(name=str(row["model"]), family="llm", kind="llm", params=params,
                         source="parameter count from the measurement row")
    elif custom and parameterised_llm(str(row["model"])) is None:
        spec = ModelSpec(name=str(row["model"]), family="custom", kind="dnn", source="measurement file")
    else:
        spec = catalog.model(str(row["model"]))  # llm-<N>b, or a CatalogError naming close matches
    if isinstance(params, float) and not math.isnan(params):
        spec = dataclasses.replace(spec, params=params)
    if isinstance(active, float) and not math.isnan(active):
        spec = dataclasses.replace(spec, active_params=active)
    return spec
