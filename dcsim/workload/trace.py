"""Replay training jobs from a CSV trace with a column mapping (Philly preset included).

Rows that cannot be used are counted per reason with example line numbers (the header is line 1),
never dropped silently: unparseable or implausible cells (a gang of 1e19 accelerators, a job of 1e308
seconds) and rows with more fields than the header. Submit times are shifted so the first job arrives
at t = 0.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel

from dcsim.errors import TraceError, clip, excerpt
from dcsim.model import Job
from dcsim.scenario.schema import TraceColumns, TraceTraining
from dcsim.scenario.units_types import MAX_DURATION_S, MAX_GANG
from dcsim.workload.common import (
    StreamFactory,
    WorkloadReport,
    apply_batch_sizes,
    draw_constraints,
    draw_estimates,
    draw_models,
    make_jobs,
)
from dcsim.workload.deferral import read_deadlines
from dcsim.workload.tenancy import read_tenancy
from dcsim.workload.trace_cells import parse_seconds, parse_times, parse_type_sets

PHILLY_COLUMNS = TraceColumns(submit="timestamp", duration="duration", accelerators="num_gpus")


def read_trace(
    spec: TraceTraining, base_dir: str, streams: StreamFactory, canonical: Callable[[str], str],
    known_models: set[str],
) -> tuple[list[Job], WorkloadReport]:
    path, columns = _resolve(spec, base_dir)
    frame, extra = _read_csv(path, columns)
    report = WorkloadReport(source=f"trace:{spec.path}", rows_read=len(frame))
    submit = parse_times(frame[columns.submit], spec.time_unit)
    if columns.start is not None and columns.end is not None:
        duration = parse_times(frame[columns.end], spec.time_unit) - parse_times(frame[columns.start], spec.time_unit)
        duration_label = f"{columns.end} - {columns.start}"
    else:
        duration = parse_seconds(frame[columns.duration], spec.time_unit)
        duration_label = columns.duration
    demand_raw = pd.to_numeric(frame[columns.accelerators], errors="coerce").to_numpy(dtype=float)
    checks = [
        (EXTRA_FIELDS, ~extra),
        (f"{columns.submit}: not a time", np.isfinite(submit)),
        (f"{columns.submit}: {TIME_RANGE}", near_median(submit)),
        (f"{duration_label}: not a positive duration", (duration > 0) & np.isfinite(duration)),
        (f"{duration_label}: longer than 100 years", duration <= MAX_DURATION_S),
        (f"{columns.accelerators}: not a whole number from 1 to {MAX_GANG}",
         (demand_raw >= 1) & (demand_raw <= MAX_GANG) & (demand_raw == np.floor(demand_raw))),
    ]
    batch = _batch_sizes(frame, columns)
    if columns.batch_size is not None:
        checks.append((f"{columns.batch_size}: not a positive number up to 1e7 (or empty)",
                       np.isnan(batch) & _empty(frame[columns.batch_size]) | (batch > 0) & (batch <= 1e7)))
    lines, keep = report.check_rows(frame, checks)
    short = keep & (duration < spec.min_duration)
    report.skip("shorter than min_duration", lines[short].tolist())
    keep &= ~short

    allowed: list[tuple[str, ...] | None] = [None] * len(frame)
    if columns.accelerator_type is not None:
        keep = _map_types(frame[columns.accelerator_type], keep, lines, allowed, canonical, report, columns)
    models = draw_models(spec, len(frame), streams)
    if columns.model is not None:
        keep = _map_models(frame[columns.model], keep, lines, models, known_models, report, columns)

    index = np.flatnonzero(keep)
    index = index[np.argsort(submit[index], kind="stable")]
    if spec.limit is not None and len(index) > spec.limit:
        report.skip("beyond limit", lines[index[spec.limit:]].tolist())
        index = index[: spec.limit]
    if len(index) == 0:
        raise TraceError(f"{path}: no usable job rows ({skipped_text(report)})")

    times = (submit[index] - submit[index].min()) * spec.time_scale
    work = duration[index]
    if columns.name:
        names = frame[columns.name].astype(str).to_numpy()[index].tolist()
    else:
        names = [f"line-{n}" for n in lines[index]]
    jobs = make_jobs(times, demand_raw[index].astype(int), work, [models[i] for i in index],
                     draw_estimates(spec, work, streams), [allowed[i] for i in index], names)
    read_tenancy(spec, columns, frame, index, lines, jobs, path)
    read_deadlines(columns, frame, index, lines, jobs, path)
    apply_batch_sizes(spec, jobs, [None if np.isnan(batch[i]) else float(batch[i]) for i in index])
    # Constraints from the scenario apply only to jobs the trace did not pin to a type.
    pinned = draw_constraints(spec, len(jobs), streams, canonical)
    for job, pin in zip(jobs, pinned, strict=True):
        if job.allowed is None:
            job.allowed = pin
    report.jobs = len(jobs)
    return jobs, report


def _batch_sizes(frame: pd.DataFrame, columns: TraceColumns) -> np.ndarray:
    """Per-row batch sizes (NaN where the cell is empty, not a number, or there is no column)."""
    if columns.batch_size is None:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[columns.batch_size], errors="coerce").to_numpy(dtype=float)


def _empty(cells: pd.Series) -> np.ndarray:
    return cells.isna().to_numpy() | (cells.astype(str).str.strip() == "").to_numpy()


def _resolve(spec: TraceTraining, base_dir: str) -> tuple[Path, TraceColumns]:
    preset = PHILLY_COLUMNS if spec.format == "philly" else TraceColumns()
    return resolve_trace(spec.path, base_dir, preset, spec.columns)


Columns = TypeVar("Columns", bound=BaseModel)


def resolve_trace(path_text: str, base_dir: str, preset: Columns, columns: Columns | None) -> tuple[Path, Columns]:
    """The trace path (relative to the scenario) and its column mapping: the format's preset, updated
    by the columns the user set."""
    path = Path(path_text) if Path(path_text).is_absolute() else Path(base_dir) / path_text
    if columns is None:
        return path, preset
    return path, preset.model_copy(update=columns.model_dump(exclude_unset=True))


def _read_csv(path: Path, columns: TraceColumns, nrows: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    frame, extra = read_csv_strings(path, nrows)
    _check_columns(path, frame, columns)
    return frame, extra


EXTRA_FIELDS = "more fields than the header"
TIME_RANGE = "more than 100 years from the trace's median time"
_EXTRA = "\0extra"  # the column that catches one field beyond the header (no CSV header is named so)


def read_csv_strings(path: Path, nrows: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Every cell as a string ("" when empty), blank lines kept as rows so line numbers stay exact,
    and which rows have non-empty fields beyond the header (empty ones, as from trailing commas, are fine)."""
    if path.exists() and not path.is_file():
        raise TraceError(f"{path}: cannot read trace file: not a regular file (a folder, device or pipe)")
    try:
        header = [str(name) for name in pd.read_csv(path, nrows=0, dtype=str, index_col=False).columns]
        try:  # fast: the C parser, with one spare column for trailing commas and one extra field
            frame = pd.read_csv(path, header=None, skiprows=1, names=[*header, _EXTRA], dtype=str,
                                keep_default_na=False, skip_blank_lines=False, nrows=nrows, index_col=False)
        except pd.errors.ParserError:  # a row with two or more fields beyond the header
            frame = _read_ragged(path, header, nrows)
    except FileNotFoundError:
        raise TraceError(f"{path}: trace file not found") from None
    except OSError as exc:
        raise TraceError(f"{path}: cannot read trace file: {exc.strerror or exc}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise TraceError(f"{path}: not a readable CSV file: {clip(str(exc).splitlines()[0], 200)}") from None
    extra = frame.pop(_EXTRA).fillna("").str.strip().ne("").to_numpy(dtype=bool)
    return frame.fillna(""), extra


def _read_ragged(path: Path, header: list[str], nrows: int | None) -> pd.DataFrame:
    """The slow path for rows of any width: cut to the header's width, the first cut field kept in _EXTRA."""
    width = len(header)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        rows = []
        for row in islice(reader, nrows):
            beyond = "".join(row[width:]).strip()
            rows.append([*row[:width], *[""] * (width - len(row)), beyond])
    return pd.DataFrame(rows, columns=[*header, _EXTRA], dtype=str)


def near_median(times: np.ndarray) -> np.ndarray:
    """Which times lie within 100 years of the median finite time: a far outlier (1e308) would
    stretch the run past what float sums can hold, and is likelier a typo than a real job."""
    finite = times[np.isfinite(times)]
    if len(finite) == 0:
        return np.ones(len(times), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.abs(times - float(np.median(finite))) <= MAX_DURATION_S


def _check_columns(path: Path, frame: pd.DataFrame, columns: TraceColumns) -> None:
    paired = columns.start is not None and columns.end is not None
    needed = {"submit": columns.submit, "duration": None if paired else columns.duration,
              "start": columns.start, "end": columns.end, "accelerators": columns.accelerators,
              "model": columns.model, "accelerator_type": columns.accelerator_type, "name": columns.name,
              "tenant": columns.tenant, "priority": columns.priority, "checkpoint_size": columns.checkpoint_size,
              "restart_delay": columns.restart_delay, "batch_size": columns.batch_size,
              "deadline": columns.deadline}
    for field_name, column in needed.items():
        if column is not None and column not in frame.columns:
            raise TraceError(
                f"{path}: missing column {excerpt(column)} for {field_name} "
                f"(columns present: {clip(', '.join(map(str, frame.columns)), 200)}); "
                f"set workload.training.columns.{field_name}"
            )


def _map_types(
    values: pd.Series, keep: np.ndarray, lines: np.ndarray, allowed: list[tuple[str, ...] | None],
    canonical: Callable[[str], str], report: WorkloadReport, columns: TraceColumns,
) -> np.ndarray:
    """The accelerator models each row allows: one type or several ("V100|T4"); an unknown name is a bad row."""
    texts: list[str] = values.astype(str).tolist()
    rows = np.flatnonzero(keep)
    sets = parse_type_sets([texts[i] for i in rows.tolist()], canonical)
    bad = [int(i) for i, found in zip(rows, sets, strict=True) if found is False]
    for i, found in zip(rows.tolist(), sets, strict=True):
        if isinstance(found, tuple):
            allowed[i] = found
    report.skip(f"{columns.accelerator_type}: unknown accelerator", lines[bad].tolist())
    keep = keep.copy()
    keep[bad] = False
    return keep


def _map_models(
    values: pd.Series, keep: np.ndarray, lines: np.ndarray, models: list[str], known: set[str],
    report: WorkloadReport, columns: TraceColumns,
) -> np.ndarray:
    bad: list[int] = []
    texts: list[str] = values.astype(str).tolist()
    for i in np.flatnonzero(keep).tolist():
        text = texts[i].strip()
        if text in known:
            models[i] = text
        elif text:
            bad.append(i)
    report.skip(f"{columns.model}: unknown model type", lines[bad].tolist())
    keep = keep.copy()
    keep[bad] = False
    return keep


def skipped_text(report: WorkloadReport) -> str:
    if not report.skipped:
        return f"{report.rows_read} rows read"
    parts = [f"{count} {reason} (e.g. line {report.skipped_lines[reason][0]})"
             for reason, count in report.skipped.items()]
    return f"{report.rows_read} rows read; skipped: " + "; ".join(parts)


def check_trace_header(spec: TraceTraining, base_dir: str) -> list[str]:
    """Problems `dcsim validate` can find without reading the whole trace: file and columns."""
    path, columns = _resolve(spec, base_dir)
    try:
        _read_csv(path, columns, nrows=0)
    except TraceError as exc:
        return [f"workload.training.path: {exc}"]
    return []

