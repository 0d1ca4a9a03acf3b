"""Inference request sources: synthetic rates and token distributions, trace replay with row accounting."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcsim.engine.rng import stream
from dcsim.errors import TraceError
from dcsim.model.requests import Request
from dcsim.scenario.inference import SyntheticRequests, TraceRequests
from dcsim.workload import WorkloadReport, build_requests
from dcsim.workload.requests import check_request_trace_header
from tests.helpers import SHARED_DATA

AZURE = SHARED_DATA / "azure-llm-inference-2023"


def streams_for(seed: int) -> Any:
    return lambda name: stream(seed, name)


def synthetic(count: int = 20_000, seed: int = 1, **changes: Any) -> tuple[list[Request], WorkloadReport]:
    data: dict[str, Any] = {
        "source": "synthetic", "count": count, "arrival": {"process": "poisson", "rate": "5/s"},
        "prompt_tokens": {"distribution": "constant", "value": 100},
        "output_tokens": {"distribution": "constant", "value": 10},
    }
    data.update(changes)
    return build_requests(SyntheticRequests.model_validate(data), 3, ".", streams_for(seed))


def replay(path: Path, **fields: Any) -> tuple[list[Request], WorkloadReport]:
    spec = TraceRequests.model_validate({"source": "trace", "path": str(path), **fields})
    return build_requests(spec, 0, str(path.parent), streams_for(1))


def arrivals(requests: list[Request]) -> np.ndarray:
    return np.array([r.arrival for r in requests])


def tokens(requests: list[Request], which: str) -> np.ndarray:
    return np.array([getattr(r, which) for r in requests])


def as_tuples(requests: list[Request]) -> list[tuple[object, ...]]:
    return [(r.id, r.service, r.arrival, r.prompt_tokens, r.output_tokens, r.key) for r in requests]


# --- synthetic ---------------------------------------------------------------------------------


def test_poisson_mean_gap_and_records() -> None:
    requests, report = synthetic()
    gaps = np.diff(np.concatenate([[0.0], arrivals(requests)]))
    assert abs(gaps.mean() - 0.2) < 0.2 * 0.03
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.05  # exponential: cv = 1
    assert [r.id for r in requests] == list(range(20_000))
    assert {r.service for r in requests} == {3}
    assert [r.key for r in requests] == list(range(20_000))  # no sessions: every request its own key
    assert requests[0].arrival > 0  # synthetic arrivals start at the first gap
    assert report.as_dict()["rows_read"] == report.jobs == 20_000 and report.source == "synthetic"


def test_gamma_cv_and_constant_spacing() -> None:
    bursty, _ = synthetic(50_000, arrival={"process": "gamma", "rate": "5/s", "cv": 3.0})
    gaps = np.diff(np.concatenate([[0.0], arrivals(bursty)]))
    assert abs(gaps.mean() - 0.2) < 0.2 * 0.05
    assert abs(gaps.std() / gaps.mean() - 3.0) < 0.3
    even, _ = synthetic(100, arrival={"process": "constant", "rate": "4/s"})
    assert np.allclose(arrivals(even), 0.25 * np.arange(1, 101))


def test_diurnal_peak_half_over_trough_half_matches_the_integral() -> None:
    amplitude, period, rate = 0.5, 1000.0, 5.0
    requests, _ = synthetic(60_000, arrival={"process": "diurnal", "rate": rate, "amplitude": amplitude,
                                             "period": period, "peak": 0})
    times = arrivals(requests)
    assert np.all(np.diff(times) >= 0)
    whole = math.floor(times[-1] / period) * period
    times = times[times < whole]
    phase = times % period
    peak = np.count_nonzero((phase < period / 4) | (phase >= 3 * period / 4))
    trough = len(times) - peak
    # integral of rate(1 + a cos(2 pi t / P)) over the peak half: rate (P/2 + a P / pi); trough: minus
    expected = (0.5 + amplitude / math.pi) / (0.5 - amplitude / math.pi)
    assert abs(peak / trough / expected - 1.0) < 0.04, (peak / trough, expected)
    assert abs(len(times) / whole / rate - 1.0) < 0.03  # mean rate over whole cycles


def test_token_distributions() -> None:
    requests, _ = synthetic(
        40_000, prompt_tokens={"distribution": "lognormal", "median": 1000, "sigma": 1.0},
        output_tokens={"distribution": "exponential", "mean": 200})
    prompt, output = tokens(requests, "prompt_tokens"), tokens(requests, "output_tokens")
    assert abs(np.median(prompt) / 1000 - 1.0) < 0.03
    assert abs(output.mean() / 200.5 - 1.0) < 0.03  # ceil adds half a token on average
    assert prompt.min() >= 1 and output.min() >= 1
    assert prompt.dtype.kind == output.dtype.kind == "i"
    uniform, _ = synthetic(20_000, prompt_tokens={"distribution": "uniform", "low": 5, "high": 9})
    drawn = tokens(uniform, "prompt_tokens")
    assert set(drawn.tolist()) == {5, 6, 7, 8, 9}  # both ends inclusive
    assert abs(drawn.mean() - 7.0) < 0.05
    assert set(tokens(uniform, "output_tokens").tolist()) == {10}


def test_max_clips_draws() -> None:
    requests, _ = synthetic(
        20_000, prompt_tokens={"distribution": "lognormal", "median": 1000, "sigma": 1.0, "max": 2000},
        output_tokens={"distribution": "exponential", "mean": 200, "max": 50})
    prompt, output = tokens(requests, "prompt_tokens"), tokens(requests, "output_tokens")
    assert prompt.max() == 2000 and output.max() == 50
    share = np.mean(prompt == 2000)  # P(lognormal >= 2000) = P(Z >= ln 2)
    assert abs(share - 0.5 * math.erfc(math.log(2) / math.sqrt(2))) < 0.015


def test_same_seed_same_requests_and_streams_are_independent() -> None:
    first, _ = synthetic(2000, sessions=7, prompt_tokens={"distribution": "lognormal", "median": 300})
    again, _ = synthetic(2000, sessions=7, prompt_tokens={"distribution": "lognormal", "median": 300})
    assert as_tuples(first) == as_tuples(again)
    assert {r.key for r in first} == set(range(7))
    other, _ = synthetic(2000, sessions=7, prompt_tokens={"distribution": "lognormal", "median": 300},
                         output_tokens={"distribution": "exponential", "mean": 50})
    assert np.array_equal(arrivals(first), arrivals(other))
    assert [r.prompt_tokens for r in first] == [r.prompt_tokens for r in other]
    assert [r.key for r in first] == [r.key for r in other]
    assert [r.output_tokens for r in first] != [r.output_tokens for r in other]
    reseeded, _ = synthetic(2000, seed=2, sessions=7, prompt_tokens={"distribution": "lognormal", "median": 300})
    assert not np.array_equal(arrivals(first), arrivals(reseeded))


def test_hundred_thousand_requests_are_quick() -> None:
    start = time.perf_counter()
    requests, _ = synthetic(100_000, arrival={"process": "diurnal", "rate": "50/s", "period": "1h"},
                            prompt_tokens={"distribution": "lognormal", "median": 500}, sessions=100)
    assert len(requests) == 100_000
    assert time.perf_counter() - start < 3.0  # about 0.25 s; the bound only catches per-request Python draws


# --- trace -------------------------------------------------------------------------------------


def write_csv(tmp_path: Path, text: str, name: str = "requests.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bad_rows_are_counted_with_line_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path, (
        "arrival,prompt_tokens,output_tokens\n"
        "10,100,5\n"          # line 2: ok
        "soon,100,5\n"        # line 3: bad time
        "11,0,5\n"            # line 4: prompt below 1
        "12,1.5,5\n"          # line 5: prompt not an integer
        "13,100,abc\n"        # line 6: output not a number
        "\n"                  # line 7: blank
        "never,0,0\n"         # line 8: counted under its first problem only (time)
        "12.5,200.0,7\n"      # line 9: ok (200.0 is an integer)
        "14,100,\n"           # line 10: output missing
    ))
    requests, report = replay(path)
    summary = report.as_dict()
    assert summary["rows_read"] == 9 and summary["requests"] == 2
    assert summary["skipped"] == {"arrival: not a time": 2, "blank line": 1,
                                  "output_tokens: not a positive integer": 2,
                                  "prompt_tokens: not a positive integer": 2}
    assert summary["skipped_example_lines"] == {"arrival: not a time": [3, 8], "blank line": [7],
                                                "output_tokens: not a positive integer": [6, 10],
                                                "prompt_tokens: not a positive integer": [4, 5]}
    assert report.rows_read == report.jobs + sum(report.skipped.values())
    assert summary["source"] == f"trace:{path}"
    assert as_tuples(requests) == [(0, 0, 0.0, 100, 5, 0), (1, 0, 2.5, 200, 7, 1)]


AZURE_SAMPLE = (
    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    "2023-11-16 18:15:46.6805900,374,44\n"
    "2023-11-16 18:15:50.9951690,396,109\n"
    "2023-11-16 18:15:50.5271150,879,28\n"   # out of order: sorted by arrival
    "2023-11-16 18:16:00.0000001,1000,2"     # no final newline, like the real files
)


def test_azure_preset_with_seven_digit_fractions(tmp_path: Path) -> None:
    path = write_csv(tmp_path, AZURE_SAMPLE, "azure.csv")
    requests, report = replay(path, format="azure")
    assert report.rows_read == 4 and report.jobs == 4 and not report.skipped
    assert np.allclose(arrivals(requests), [0.0, 3.846525, 4.314579, 13.3194101], atol=1e-6)
    assert [r.prompt_tokens for r in requests] == [374, 879, 396, 1000]
    assert [r.output_tokens for r in requests] == [44, 28, 109, 2]
    halved, _ = replay(path, format="azure", rate_scale=2)
    assert np.allclose(arrivals(halved), arrivals(requests) / 2)


def test_limit_keeps_the_earliest_usable_requests(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "arrival,prompt_tokens,output_tokens\n30,1,1\n10,2,2\n20,0,3\n40,4,4\n5,5,5\n")
    requests, report = replay(path, limit=2)
    assert [r.prompt_tokens for r in requests] == [5, 2]
    assert [r.arrival for r in requests] == [0.0, 5.0]
    assert report.skipped == {"prompt_tokens: not a positive integer": 1, "beyond limit": 2}
    assert report.skipped_lines["beyond limit"] == [2, 5]


def test_key_column_maps_ints_as_is_and_strings_by_crc32(tmp_path: Path) -> None:
    import zlib

    path = write_csv(tmp_path, "t,p,o,session\n0,1,1,42\n1,1,1,alice\n2,1,1,7.0\n3,1,1,\n4,1,1,alice\n")
    columns = {"arrival": "t", "prompt_tokens": "p", "output_tokens": "o", "key": "session"}
    requests, _ = replay(path, columns=columns)
    crc = zlib.crc32(b"alice")
    assert [r.key for r in requests] == [42, crc, 7, 3, crc]  # a blank key: the request's own position


def test_missing_column_file_and_no_usable_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "TIMESTAMP,Context,GeneratedTokens\n2023-11-16 18:15:46.6805900,1,1\n")
    with pytest.raises(TraceError) as error:
        replay(path, format="azure")
    message = str(error.value)
    assert message.startswith(f"{path}: missing column 'ContextTokens' for prompt_tokens")
    assert "(columns present: TIMESTAMP, Context, GeneratedTokens)" in message and "\n" not in message
    # user columns update the preset
    requests, _ = replay(path, format="azure", columns={"prompt_tokens": "Context"})
    assert len(requests) == 1
    with pytest.raises(TraceError, match="trace file not found"):
        replay(tmp_path / "absent.csv")
    empty = write_csv(tmp_path, "arrival,prompt_tokens,output_tokens\nx,1,1\n", "bad.csv")
    with pytest.raises(TraceError, match=r"no usable request rows \(1 rows read; skipped: 1 arrival: not a time"):
        replay(empty)


def test_check_request_trace_header(tmp_path: Path) -> None:
    write_csv(tmp_path, AZURE_SAMPLE, "azure.csv")

    def check(**fields: Any) -> list[str]:
        spec = TraceRequests.model_validate({"source": "trace", **fields})
        return check_request_trace_header(spec, str(tmp_path))

    assert check(path="azure.csv", format="azure") == []
    [problem] = check(path="azure.csv")
    assert problem.startswith("requests.path: ") and "missing column 'arrival' for arrival" in problem
    [problem] = check(path="nowhere.csv")
    assert "nowhere.csv: trace file not found" in problem


@pytest.mark.parametrize("name, rows, prompt_mean, output_mean", [
    ("conv", 19_366, 1154.7, 211.1), ("code", 8_819, 2047.8, 27.9)])
def test_real_azure_traces(name: str, rows: int, prompt_mean: float, output_mean: float) -> None:
    path = AZURE / f"AzureLLMInferenceTrace_{name}.csv"
    if not path.exists():
        pytest.skip(f"shared Azure trace not present: {path}")
    requests, report = replay(path, format="azure")
    assert report.rows_read == rows  # every data line (the files have no final newline)
    assert report.jobs == len(requests) == report.rows_read - sum(report.skipped.values())
    times = arrivals(requests)
    assert times[0] == 0.0 and np.all(np.diff(times) >= 0)
    duration = times[-1]
    print(f"{name}: {len(requests)} requests over {duration:.1f} s, mean prompt "
          f"{tokens(requests, 'prompt_tokens').mean():.1f}, mean output {tokens(requests, 'output_tokens').mean():.1f}")
    assert 3300 < duration < 3600  # observed: conv 3501.7 s, code 3435.9 s (about an hour)
    assert abs(tokens(requests, "prompt_tokens").mean() - prompt_mean) < 0.5
    assert abs(tokens(requests, "output_tokens").mean() - output_mean) < 0.5
