"""Replay training jobs from a CSV trace with a column mapping (Philly preset included).

Rows that cannot be used are counted per reason with example line numbers (the header is line 1),
never dropped silently. Submit times are shifted so the first job arrives at t = 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from pydantic import BaseModel

from dcsim.errors import CatalogError, TraceError
from dcsim.model import Job
from dcsim.scenario.schema import TraceColumns, TraceTraining
from dcsim.workload.common import (
    StreamFactory,
    WorkloadReport,
    draw_constraints,
    draw_estimates,
    draw_models,
    make_jobs,
)
from dcsim.workload.tenancy import read_tenancy

PHILLY_COLUMNS = TraceColumns(submit="timestamp", duration="duration", accelerators="num_gpus")


def read_trace(
    spec: TraceTraining, base_dir: str, streams: StreamFactory, canonical: Callable[[str], str],
    known_models: set[str],
) -> tuple[list[Job], WorkloadReport]:
    path, columns = _resolve(spec, base_dir)
    frame = _read_csv(path, columns)
    report = WorkloadReport(source=f"trace:{spec.path}", rows_read=len(frame))
    submit = parse_times(frame[columns.submit])
    duration = pd.to_numeric(frame[columns.duration], errors="coerce").to_numpy(dtype=float)
    demand_raw = pd.to_numeric(frame[columns.accelerators], errors="coerce").to_numpy(dtype=float)
    checks = [
        (f"{columns.submit}: not a time", np.isfinite(submit)),
        (f"{columns.duration}: not a positive number", (duration > 0) & np.isfinite(duration)),
        (f"{columns.accelerators}: not a positive integer", (demand_raw >= 1) & (demand_raw == np.floor(demand_raw))),
    ]
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
    # Constraints from the scenario apply only to jobs the trace did not pin to a type.
    pinned = draw_constraints(spec, len(jobs), streams, canonical)
    for job, pin in zip(jobs, pinned, strict=True):
        if job.allowed is None:
            job.allowed = pin
    report.jobs = len(jobs)
    return jobs, report


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


def _read_csv(path: Path, columns: TraceColumns, nrows: int | None = None) -> pd.DataFrame:
    frame = read_csv_strings(path, nrows)
    _check_columns(path, frame, columns)
    return frame


def read_csv_strings(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """Every cell as a string ("" when empty), blank lines kept as rows so line numbers stay exact."""
    try:
        with warnings.catch_warnings():  # fields beyond the header (e.g. trailing commas) are ignored
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, nrows=nrows,
                                index_col=False)
    except FileNotFoundError:
        raise TraceError(f"{path}: trace file not found") from None
    except OSError as exc:
        raise TraceError(f"{path}: cannot read trace file: {exc.strerror or exc}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise TraceError(f"{path}: not a readable CSV file: {str(exc).splitlines()[0]}") from None
    return frame


def _check_columns(path: Path, frame: pd.DataFrame, columns: TraceColumns) -> None:
    needed = {"submit": columns.submit, "duration": columns.duration, "accelerators": columns.accelerators,
              "model": columns.model, "accelerator_type": columns.accelerator_type, "name": columns.name}
    for field_name, column in needed.items():
        if column is not None and column not in frame.columns:
            raise TraceError(
                f"{path}: missing column {column!r} for {field_name} (columns present: {', '.join(frame.columns)}); "
                f"set workload.training.columns.{field_name}"
            )


def parse_times(values: pd.Series) -> np.ndarray:
    """Seconds as numbers, or date-times converted to seconds (time zones respected).

    The column is read as numbers when most of its cells are numbers, else as date-times; in date-time
    mode a bare number is not a time (it would be read as a year), so it is counted as a bad row.
    """
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() >= (values != "").sum() * 0.5:
        return numeric.to_numpy(dtype=float)
    stamps = pd.to_datetime(values.where(numeric.isna()), errors="coerce", format="mixed", utc=True)
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds.to_numpy(dtype=float)


def _map_types(
    values: pd.Series, keep: np.ndarray, lines: np.ndarray, allowed: list[tuple[str, ...] | None],
    canonical: Callable[[str], str], report: WorkloadReport, columns: TraceColumns,
) -> np.ndarray:
    bad: list[int] = []
    cache: dict[str, str | None] = {}
    texts: list[str] = values.astype(str).tolist()
    for i in np.flatnonzero(keep).tolist():
        text = texts[i].strip()
        if not text:
            continue
        if text not in cache:
            try:
                cache[text] = canonical(text)
            except CatalogError:
                cache[text] = None
        if cache[text] is None:
            bad.append(i)
        else:
            allowed[i] = (cache[text] or "",)
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

