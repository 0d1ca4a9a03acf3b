"""Replay inference requests from a CSV trace with a column mapping (Azure LLM inference preset).

Rows that cannot be used are counted per reason with example line numbers (the header is line 1),
never dropped silently: unparseable or implausible cells and rows with more fields than the header.
Arrivals are shifted so the first request arrives at t = 0, then divided by `rate_scale`. Returns plain
arrays; `dcsim.workload.requests` turns them into Request records.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from dcsim.errors import TraceError, clip, excerpt
from dcsim.scenario.inference import RequestColumns, TraceRequests
from dcsim.scenario.schema import Scenario
from dcsim.workload.common import WorkloadReport
from dcsim.workload.trace import (
    EXTRA_FIELDS,
    TIME_RANGE,
    near_median,
    read_csv_strings,
    resolve_trace,
    skipped_text,
)
from dcsim.workload.trace_cells import parse_times

AZURE_COLUMNS = RequestColumns(arrival="TIMESTAMP", prompt_tokens="ContextTokens", output_tokens="GeneratedTokens")

# Larger token counts are rejected as not plausible integers (beyond this float64 loses integer precision).
_MOST_TOKENS = 2.0**53


def read_request_trace(
    spec: TraceRequests, base_dir: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, WorkloadReport]:
    """Arrival (s from 0), prompt tokens, output tokens and key per usable row, sorted by arrival, and the report."""
    path, columns = _resolve(spec, base_dir)
    frame, extra = _read(path, columns)
    report = WorkloadReport(source=f"trace:{spec.path}", rows_read=len(frame))
    arrival = parse_times(frame[columns.arrival])
    prompt = pd.to_numeric(frame[columns.prompt_tokens], errors="coerce").to_numpy(dtype=float)
    output = pd.to_numeric(frame[columns.output_tokens], errors="coerce").to_numpy(dtype=float)
    checks = [
        (EXTRA_FIELDS, ~extra),
        (f"{columns.arrival}: not a time", np.isfinite(arrival)),
        (f"{columns.arrival}: {TIME_RANGE}", near_median(arrival)),
        (f"{columns.prompt_tokens}: not a positive integer", _positive_integers(prompt)),
        (f"{columns.output_tokens}: not a positive integer", _positive_integers(output)),
    ]
    lines, keep = report.check_rows(frame, checks)

    index = np.flatnonzero(keep)
    index = index[np.argsort(arrival[index], kind="stable")]
    if spec.limit is not None and len(index) > spec.limit:
        report.skip("beyond limit", lines[index[spec.limit:]].tolist())
        index = index[: spec.limit]
    if len(index) == 0:
        raise TraceError(f"{path}: no usable request rows ({skipped_text(report)})")

    times = (arrival[index] - arrival[index[0]]) / spec.rate_scale
    # Without a key column every request is its own session.
    key = np.arange(len(index), dtype=np.int64) if columns.key is None else _keys(frame[columns.key].to_numpy()[index])
    return times, prompt[index].astype(np.int64), output[index].astype(np.int64), key, report


def _positive_integers(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= 1) & (values <= _MOST_TOKENS) & (values == np.floor(values))


def _keys(texts: np.ndarray) -> np.ndarray:
    """Session keys as ints, the same on every run: integral numbers as-is, other text by CRC-32.

    A blank key means no session: the request gets its own position (as without a key column).
    """
    keys = np.empty(len(texts), dtype=np.int64)
    for i, raw in enumerate(texts.tolist()):
        text = str(raw).strip()
        if not text:
            keys[i] = i
            continue
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if np.isfinite(number) and number == np.floor(number) and abs(number) < 2.0**63:
            keys[i] = int(text) if text.lstrip("+-").isdigit() else int(number)
        else:
            keys[i] = zlib.crc32(text.encode("utf-8"))
    return keys


def _resolve(spec: TraceRequests, base_dir: str) -> tuple[Path, RequestColumns]:
    preset = AZURE_COLUMNS if spec.format == "azure" else RequestColumns()
    return resolve_trace(spec.path, base_dir, preset, spec.columns)


def _read(path: Path, columns: RequestColumns, nrows: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    frame, extra = read_csv_strings(path, nrows)
    needed = {"arrival": columns.arrival, "prompt_tokens": columns.prompt_tokens,
              "output_tokens": columns.output_tokens, "key": columns.key}
    for field_name, column in needed.items():
        if column is not None and column not in frame.columns:
            raise TraceError(
                f"{path}: missing column {excerpt(column)} for {field_name} "
                f"(columns present: {clip(', '.join(map(str, frame.columns)), 200)}); "
                f"set requests.columns.{field_name}"
            )
    return frame, extra


def check_request_trace_header(spec: TraceRequests, base_dir: str) -> list[str]:
    """Problems `dcsim validate` can find without reading the whole trace: file and columns."""
    path, columns = _resolve(spec, base_dir)
    try:
        _read(path, columns, nrows=0)
    except TraceError as exc:
        return [f"requests.path: {exc}"]
    return []


def request_trace_problems(scenario: Scenario) -> list[str]:
    """check_request_trace_header for every trace-fed service, each with its scenario path."""
    inference = scenario.workload.inference
    problems: list[str] = []
    for index, service in enumerate(inference.services if inference is not None else ()):
        if isinstance(service.requests, TraceRequests):
            problems += [f"workload.inference.services.{index}.{problem}"
                         for problem in check_request_trace_header(service.requests, scenario.base_dir)]
    return problems
