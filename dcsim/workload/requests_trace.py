"""Replay inference requests from a CSV or JSON Lines trace with a column mapping (Azure, Mooncake presets).

Rows that cannot be used are counted per reason with example line numbers (the header is line 1),
never dropped silently: unparseable or implausible cells and rows with more fields than the header.
Arrivals are shifted so the first request arrives at t = 0, then divided by `rate_scale`. Returns plain
arrays; `dcsim.workload.requests` turns them into Request records.

Prefix hashes (optional): a request with n hashes of `block_size` tokens each must have
(n - 1) x block_size < prompt tokens <= n x block_size (block i covers tokens [i b, (i + 1) b), the last
may be partial), or no hashes at all; anything else means the block size or the file is wrong and
stops the read with one line naming the file, line and field.
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
from dcsim.workload.requests_jsonl import HashIds, read_jsonl
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
MOONCAKE_COLUMNS = RequestColumns(arrival="timestamp", prompt_tokens="input_length", output_tokens="output_length",
                                  prefix_hashes="hash_ids")

# Larger token counts are rejected as not plausible integers (beyond this float64 loses integer precision).
_MOST_TOKENS = 2.0**53


def read_request_trace(
    spec: TraceRequests, base_dir: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, WorkloadReport]:
    """Arrival (s from 0), prompt tokens, output tokens and key per usable row, sorted by arrival, and the report."""
    times, prompt, output, key, _, report = read_request_trace_hashes(spec, base_dir)
    return times, prompt, output, key, report


def read_request_trace_hashes(
    spec: TraceRequests, base_dir: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[np.ndarray | None] | None, WorkloadReport]:
    """As read_request_trace, plus each kept row's prefix-hash ids (None without a hash field)."""
    path, columns = _resolve(spec, base_dir)
    frame, extra, hashes = _read(path, columns, spec)
    report = WorkloadReport(source=f"trace:{spec.path}", rows_read=len(frame))
    arrival = _arrival_seconds(frame[columns.arrival], spec)
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
    kept_hashes = None
    if hashes is not None:
        kept_hashes = [hashes[i] for i in index.tolist()]
        _check_hash_cover(path, columns, spec, kept_hashes, prompt[index], lines[index])
    return times, prompt[index].astype(np.int64), output[index].astype(np.int64), key, kept_hashes, report


def _arrival_seconds(values: pd.Series, spec: TraceRequests) -> np.ndarray:
    unit = spec.time_unit or ("ms" if spec.format == "mooncake" else "s")
    if unit != "datetime":
        return parse_times(values, unit)
    stamps = pd.to_datetime(values.where(pd.to_numeric(values, errors="coerce").isna()), errors="coerce",
                            format="mixed", utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)


def _check_hash_cover(path: Path, columns: RequestColumns, spec: TraceRequests, hashes: list[np.ndarray | None],
                      prompt: np.ndarray, lines: np.ndarray) -> None:
    """n hashes of b tokens must cover the prompt: (n - 1) b < prompt <= n b (or no hashes)."""
    block = spec.hash_block_size
    assert block is not None
    for ids, tokens, line in zip(hashes, prompt.tolist(), lines.tolist(), strict=True):
        if ids is None or len(ids) == 0:
            continue
        expected = -(-int(tokens) // block)
        if len(ids) != expected:
            raise TraceError(f"{path}: line {line}: field {columns.prefix_hashes!r}: {len(ids)} hashes of "
                             f"block_size {block} tokens do not cover the {int(tokens)}-token prompt "
                             f"(expected ceil(prompt / block_size) = {expected}); check requests.block_size")


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
    preset = {"azure": AZURE_COLUMNS, "mooncake": MOONCAKE_COLUMNS}.get(spec.format, RequestColumns())
    return resolve_trace(spec.path, base_dir, preset, spec.columns)


def _read(path: Path, columns: RequestColumns, spec: TraceRequests,
          nrows: int | None = None) -> tuple[pd.DataFrame, np.ndarray, list[np.ndarray | None] | None]:
    """String cells, rows with extra fields (CSV), and per-row hash ids (None without a hash column)."""
    if columns.prefix_hashes is not None and spec.hash_block_size is None:
        raise TraceError(f"{path}: prefix hashes ({columns.prefix_hashes!r}) need requests.block_size "
                         "(tokens per hash)")
    needed = {"arrival": columns.arrival, "prompt_tokens": columns.prompt_tokens,
              "output_tokens": columns.output_tokens, "key": columns.key}
    if spec.reader == "jsonl":
        fields = [column for column in needed.values() if column is not None]
        frame, per_line = read_jsonl(path, fields, columns.prefix_hashes, nrows)
        return frame, np.zeros(len(frame), dtype=bool), per_line if columns.prefix_hashes else None
    try:
        frame, extra = read_csv_strings(path, nrows)
    except TraceError as exc:
        raise TraceError(f"{exc}; expected CSV with a header line (or set requests.format: jsonl)") from None
    if columns.prefix_hashes is not None:
        needed["prefix_hashes"] = columns.prefix_hashes
    for field_name, column in needed.items():
        if column is not None and column not in frame.columns:
            raise TraceError(
                f"{path}: missing column {excerpt(column)} for {field_name} "
                f"(columns present: {clip(', '.join(map(str, frame.columns)), 200)}); "
                f"set requests.columns.{field_name} (read as CSV with a header line; for JSON Lines set "
                "requests.format: jsonl)"
            )
    hash_lists: list[np.ndarray | None] | None = None
    if columns.prefix_hashes is not None and nrows != 0:
        ids = HashIds()
        for n, cell in enumerate(frame[columns.prefix_hashes].tolist()):
            ids.add_cell(cell, f"{path}: line {n + 2}: column {columns.prefix_hashes!r}")
        hash_lists = ids.lists
    return frame, extra, hash_lists


def check_request_trace_header(spec: TraceRequests, base_dir: str) -> list[str]:
    """Problems `dcsim validate` can find without reading the whole trace: file and columns."""
    path, columns = _resolve(spec, base_dir)
    try:
        if spec.reader == "jsonl":  # every line must be parsed anyway: check them all, as a run would
            read_request_trace_hashes(spec, base_dir)
        else:
            _read(path, columns, spec, nrows=0)
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
