"""JSON Lines and Mooncake request traces: fields, time units, prefix hashes, and their bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dcsim.errors import TraceError
from dcsim.scenario.inference import TraceRequests
from dcsim.workload.requests_trace import read_request_trace_hashes

MOONCAKE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mooncake-synthetic" / "synthetic_trace.jsonl"


def spec(**fields: Any) -> TraceRequests:
    return TraceRequests.model_validate({"source": "trace", **fields})


def write_jsonl(tmp_path: Path, rows: list[Any], name: str = "trace.jsonl") -> str:
    (tmp_path / name).write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return name


COLUMNS = {"arrival": "t", "prompt_tokens": "in", "output_tokens": "out", "prefix_hashes": "h", "key": "conv"}


def test_jsonl_fields_time_unit_sessions_and_string_hashes(tmp_path: Path) -> None:
    rows = [{"t": 1500, "in": 100, "out": 5, "h": ["sys", "a"], "conv": "c1"},
            {"t": 500, "in": 60, "out": 2, "h": ["sys", 7], "conv": "c2"},
            {"t": 2500, "in": 120, "out": 3, "h": ["sys", "a", "7"], "conv": "c1"}]
    name = write_jsonl(tmp_path, rows)
    times, prompt, output, key, hashes, report = read_request_trace_hashes(
        spec(path=name, columns=COLUMNS, time_unit="ms", block_size=50), str(tmp_path))
    assert times.tolist() == [0.0, 1.0, 2.0] and prompt.tolist() == [60, 100, 120] and output.tolist() == [2, 5, 3]
    assert key[1] == key[2] != key[0]  # one conversation
    assert hashes is not None
    assert [h.tolist() for h in hashes if h is not None] == [[0, 2], [0, 1], [0, 1, 3]]  # 7 and "7" differ
    assert all(h.dtype == np.int64 for h in hashes if h is not None)
    assert report.rows_read == 3 and not report.skipped


def test_format_follows_the_extension_unless_given(tmp_path: Path) -> None:
    name = write_jsonl(tmp_path, [{"arrival": 0, "prompt_tokens": 3, "output_tokens": 1}], "t.ndjson")
    assert read_request_trace_hashes(spec(path=name), str(tmp_path))[1].tolist() == [3]
    with pytest.raises(TraceError, match=r"read as CSV with a header line; for JSON Lines set requests\.format: jsonl"):
        read_request_trace_hashes(spec(path=name, format="csv"), str(tmp_path))


def test_datetime_arrivals(tmp_path: Path) -> None:
    rows = [{"arrival": "2024-05-01T10:00:00Z", "prompt_tokens": 3, "output_tokens": 1},
            {"arrival": "2024-05-01T10:00:02.5Z", "prompt_tokens": 3, "output_tokens": 1}]
    name = write_jsonl(tmp_path, rows)
    assert read_request_trace_hashes(spec(path=name, time_unit="datetime"), str(tmp_path))[0].tolist() == [0.0, 2.5]


def test_rows_with_missing_or_bad_values_are_counted_not_lost(tmp_path: Path) -> None:
    rows = [{"arrival": 0, "prompt_tokens": 3, "output_tokens": 1}, {"arrival": 1, "output_tokens": 1}, "",
            {"arrival": 2, "prompt_tokens": -4, "output_tokens": 1}]
    _, prompt, *_, report = read_request_trace_hashes(spec(path=write_jsonl(tmp_path, rows)), str(tmp_path))
    assert prompt.tolist() == [3]
    assert report.skipped == {"blank line": 1, "prompt_tokens: not a positive integer": 2}
    assert report.skipped_lines["prompt_tokens: not a positive integer"] == [2, 4]


@pytest.mark.parametrize("row, message", [
    ('{"t": 0, "in": 10, "out": 1, "h": [1, 2.5]}',
     "line 2: field 'h': hash 1 is '2.5'; expected a list of integers or strings"),
    ('{"t": 0, "in": 10, "out": 1, "h": "abc"}', "line 2: field 'h': expected a list of integers or strings"),
    ('{"t": 0, "in": 10, "out": 1, "h": [1, 2, 3]}', "line 2: field 'h': 3 hashes of block_size 8 tokens do not cover "
                                                      "the 10-token prompt (expected ceil(prompt / block_size) = 2)"),
    ('{"t": 0, "in": 10, "out": 1, "h": [1]}', "line 2: field 'h': 1 hashes of block_size 8"),
    ('{"t": 0, "in": 10, "out": 1, "h": [1], ', "line 2: not JSON"),
    ('[1, 2]', "line 2: a JSON list, not an object"),
])
def test_bad_lines_stop_the_read_naming_file_line_and_field(tmp_path: Path, row: str, message: str) -> None:
    name = write_jsonl(tmp_path, ['{"t": 0, "in": 16, "out": 1, "h": [1, 2]}', row])
    with pytest.raises(TraceError) as caught:
        read_request_trace_hashes(spec(path=name, columns=COLUMNS | {"key": None}, block_size=8), str(tmp_path))
    text = str(caught.value)
    assert str(tmp_path / name) in text and message in text and "\n" not in text


def test_hashes_need_a_block_size_and_a_fitting_kv_block(tmp_path: Path) -> None:
    name = write_jsonl(tmp_path, [{"t": 0, "in": 16, "out": 1, "h": [1, 2]}])
    with pytest.raises(TraceError, match=r"need requests\.block_size"):
        read_request_trace_hashes(spec(path=name, columns=COLUMNS | {"key": None}), str(tmp_path))
    from dcsim.scenario.inference import Service

    with pytest.raises(ValueError, match=r"block_size 24 .* must be a multiple of paged_kv\.block_size 16"):
        Service.model_validate({"name": "s", "model": "m", "replicas": [{"accelerator": "H100"}],
                                "requests": {"source": "trace", "path": name, "block_size": 24},
                                "paged_kv": {"block_size": 16}})


def test_csv_traces_carry_hashes_too(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text('arrival,prompt_tokens,output_tokens,h\n0,20,1,"[1, 2]"\n1,20,1,1|3\n2,5,1,\n')
    *_, hashes, _ = read_request_trace_hashes(spec(path="t.csv", columns={"prefix_hashes": "h"}, block_size=16),
                                              str(tmp_path))
    assert hashes is not None
    assert [None if h is None else h.tolist() for h in hashes] == [[1, 2], [1, 3], []]  # integers kept as they are


def test_the_mooncake_trace() -> None:
    if not MOONCAKE.is_file():
        pytest.skip(f"{MOONCAKE} is absent (shared data not mounted)")
    times, prompt, output, _, hashes, report = read_request_trace_hashes(
        spec(path=str(MOONCAKE), format="mooncake"), ".")
    assert report.rows_read == len(times) == 3993 and not report.skipped  # SOURCE.md: 3,993 requests
    assert times[-1] / 60 == pytest.approx(17.0, abs=0.1)  # over 17.0 minutes
    assert prompt.mean() == pytest.approx(15_325, abs=1) and output.mean() == pytest.approx(149, abs=1)
    assert hashes is not None and all(len(h) == -(-p // 512) for h, p in zip(hashes, prompt.tolist(), strict=True))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dcsim", *args], capture_output=True, text=True, timeout=300)


def test_validate_and_run_give_one_line_for_an_unreadable_trace(tmp_path: Path) -> None:
    name = write_jsonl(tmp_path, ['{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [0]}',
                                  '{"timestamp": 5, "input_length": 10, "output_length": 1, "hash_ids": [0.5]}'])
    scenario = {"name": "bad-trace", "cluster": {"node_pools": [{"name": "h", "count": 1, "accelerator": "H100",
                                                                 "accelerators_per_node": 8}]},
                "workload": {"inference": {"services": [{
                    "name": "chat", "model": "Llama-3.1-8B", "replicas": [{"accelerator": "H100"}],
                    "requests": {"source": "trace", "path": name, "format": "mooncake"}}]}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "out"
    validate, ran = cli("validate", str(path)), cli("run", str(path), "-o", str(out))
    assert validate.returncode == ran.returncode == 2
    expected = f"{tmp_path / name}: line 2: field 'hash_ids': hash 0 is '0.5'; expected a list of integers or strings"
    for done in (validate, ran):
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].endswith(expected), lines
    assert not out.exists()


def test_the_fast_reader_agrees_with_the_line_by_line_one(tmp_path: Path) -> None:
    from dcsim.workload.requests_jsonl import _read_with_arrow, read_jsonl

    rows = [{"t": 0, "in": 16, "out": 1, "h": [5, 6]}, {"t": 1.5, "in": 3, "out": 2},
            {"t": 2, "in": 40, "out": 1, "h": []}, {"t": 3, "in": -1, "out": 1, "h": [5]}]
    paths = [tmp_path / write_jsonl(tmp_path, rows)]
    if MOONCAKE.is_file():
        paths.append(MOONCAKE)
    for path in paths:
        fields = ["t", "in", "out"] if path != MOONCAKE else ["timestamp", "input_length", "output_length"]
        hashes = "h" if path != MOONCAKE else "hash_ids"
        fast = _read_with_arrow(path, fields, hashes)
        slow = read_jsonl(path, fields, hashes, nrows=10**9)  # a row limit forces the line-by-line reader
        assert fast is not None
        # a column mixing 1 and 1.5 reads as floats in pyarrow ("1.0"): the same number once parsed
        assert fast[0].apply(pd.to_numeric).equals(slow[0].apply(pd.to_numeric))
        assert [None if h is None else h.tolist() for h in fast[1]] == [None if h is None else h.tolist()
                                                                      for h in slow[1]]
    blank = tmp_path / write_jsonl(tmp_path, [rows[0], "", rows[1]], "blank.jsonl")
    assert _read_with_arrow(blank, ["t", "in", "out"], "h") is None  # blank lines: line numbers need the slow path
