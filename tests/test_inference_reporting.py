"""Inference charts and report section, drawn from hand-built frames that follow the frame contract.

The engine that produces these frames is separate; building them here pins what reporting expects
(columns, NaNs for times never reached, piecewise-constant replica levels) independently of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from dcsim.metrics.recorder import JOB_COLUMNS, JOB_DTYPES
from dcsim.reporting import write_inference_charts, write_report, write_report_html
from dcsim.reporting.charts import BINS, chart_notes
from dcsim.reporting.inference_charts import TIME_BINS, arrival_bins, replica_label, replica_levels, slo_targets
from dcsim.results import RunResult

INFERENCE_CHARTS = ["latency_cdf.png", "latency_over_time.png", "replica_batch_kv.png", "slo_attainment.png"]
END = 600.0
SLOS: dict[str, dict[str, Any]] = {"chat": {"ttft": 0.5, "tpot": 0.05},
                                   "summarize": {"ttft": "4s", "tpot": None}}  # a quantity string parses too


def requests_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Mostly completed requests, plus rejected (never routed) and unfinished ones with NaN times."""
    rng = np.random.default_rng(seed)
    service = np.where(np.arange(n) % 3 == 0, "summarize", "chat")
    arrival = np.sort(rng.uniform(0, END - 60, n))
    state = rng.choice(["completed", "rejected", "unfinished"], size=n, p=[0.85, 0.08, 0.07])
    output = rng.integers(1, 400, n)
    output[:5] = 1  # one-token outputs have no TPOT
    queue = rng.exponential(0.3, n)
    prefill = rng.lognormal(np.log(0.08), 1.2, n)  # spans over two decades: log x axis
    tpot = rng.lognormal(np.log(0.03), 0.4, n)
    admitted = arrival + queue
    first = admitted + prefill
    end = first + tpot * (output - 1)
    rejected, unfinished = state == "rejected", state == "unfinished"
    admitted[rejected] = first[rejected] = np.nan
    first[unfinished & (np.arange(n) % 2 == 0)] = np.nan  # some never reached their first token
    end[rejected | unfinished] = np.nan
    tpot_s = np.where(output > 1, (end - first) / np.maximum(output - 1, 1), np.nan)
    ttft = first - arrival
    target = np.where(service == "chat", 0.5, 4.0)
    met = (ttft <= target) & ((service != "chat") | ~(tpot_s > 0.05))
    completed = state == "completed"
    return pd.DataFrame({
        "request_id": np.arange(n), "service": service, "arrival_s": arrival,
        "replica": np.where(rejected, -1, rng.integers(0, 3, n)), "admitted_s": admitted,
        "first_token_s": first, "end_s": end, "queue_delay_s": admitted - arrival, "ttft_s": ttft,
        "tpot_s": tpot_s, "e2e_s": end - arrival, "prompt_tokens": rng.integers(10, 4000, n),
        "output_tokens": output, "preemptions": rng.integers(0, 2, n), "state": state,
        "reason": np.where(rejected, "prompt_too_long", ""),
        "slo_met": np.where(completed, met.astype(float), np.nan),
    })


def replicas_frame(count: int = 3) -> pd.DataFrame:
    ids = np.arange(count)
    return pd.DataFrame({
        "replica_id": ids, "service": np.where(ids % 3 == 2, "summarize", "chat"), "accelerator": "H100",
        "tensor_parallel": 2, "node": [f"node-{i}" for i in ids], "requested_s": 0.0, "ready_s": 30.0,
        "stopped_s": np.where(ids == 2, 400.0, np.nan), "kv_capacity_tokens": 200_000,
        "requests_completed": 80, "output_tokens": 16_000, "busy_s": 300.0, "energy_j": 4e5,
    })


def replica_timeseries_frame(rows: int, replicas: int = 3, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    replica = np.arange(rows) % replicas
    time = np.sort(rng.uniform(30, 390, rows))  # replica 2 stops at 400 s; its last level holds until then
    return pd.DataFrame({"time_s": time, "replica_id": replica, "batch": rng.integers(0, 64, rows),
                         "waiting": rng.integers(0, 10, rows), "kv_used_tokens": rng.integers(0, 200_000, rows),
                         "power_w": rng.uniform(300, 1400, rows)})


def stats(mean: float, p50: float, p95: float, p99: float, top: float) -> dict[str, float]:
    return {"mean": mean, "p50": p50, "p95": p95, "p99": p99, "max": top}


def inference_summary() -> dict[str, Any]:
    service = {"requests": 200, "completed": 171, "rejected": 15, "unfinished": 14,
               "ttft_s": stats(0.21, 0.11, 0.6, 0.8123, 2.0), "tpot_s": stats(0.031, 0.0321, 0.05, 0.061, 0.09),
               "e2e_s": stats(6.0, 5.0, 11.0, 13.0, 75.0), "queue_delay_s": stats(0.3, 0.2, 0.9, 1.4, 2.2),
               "slo_attainment": 0.873, "tokens_per_s": 900.0, "output_tokens": 34_000, "preemptions": 12,
               "energy_per_output_token_j": 0.4, "serving_energy_kwh": 1.5, "replica_busy_fraction": 0.6,
               "rejected_by_reason": {"prompt_too_long": 15}}
    other = {**service, "requests": 100, "slo_attainment": None, "ttft_s": None}
    return {**service, "requests": 300, "completed": 256, "rejected": 22, "tokens_per_s": 1234.4,
            "slo_attainment": 0.9125, "energy_per_output_token_j": 0.412, "serving_energy_kwh": 2.5,
            "replica_busy_fraction": 0.64, "rejected_by_reason": {"prompt_too_long": 22},
            "services": {"chat": service, "summarize": other}}


def cluster_timeseries() -> pd.DataFrame:
    time = np.linspace(0, END, 20)
    busy = np.arange(20) % 7
    return pd.DataFrame({"time_s": time, "queue_length": 0, "allocated_all": 6, "busy_all": busy,
                         "allocated_H100": 6, "busy_H100": busy, "power_accelerators_w": 4e3 + 500.0 * busy,
                         "power_hosts_w": 2e3, "power_network_w": 0.0, "power_storage_w": 0.0,
                         "power_it_w": 6e3 + 500.0 * busy, "power_facility_w": 1.3 * (6e3 + 500.0 * busy)})


def make_result(ts_rows: int = 30, slos: dict[str, Any] | None = None, inference: bool = True) -> RunResult:
    """A served-inference run with no training jobs (the jobs frame is empty but typed)."""
    slos = SLOS if slos is None else slos
    services = [{"name": name, "model": "llm-13b", "slo": slo} for name, slo in slos.items()]
    scenario = {"name": "serve", "workload": {"inference": {"services": services}}}
    summary: dict[str, Any] = {"scenario": "serve", "seed": 0, "dcsim_version": "0", "sim_time_s": END,
                               "cluster": {"accelerators": {"H100": 8}}}
    jobs = pd.DataFrame({c: pd.Series(dtype=t) for c, t in JOB_DTYPES.items()})[JOB_COLUMNS]
    result = RunResult(scenario=scenario, seed=0, version="0", summary=summary, jobs=jobs,
                       timeseries=cluster_timeseries())
    if inference:
        summary["inference"] = inference_summary()
        result = result.replace(requests=requests_frame(), replicas=replicas_frame(),
                                     replica_timeseries=replica_timeseries_frame(ts_rows))
    return result


def assert_images(folder: Path, names: list[str]) -> None:
    for name in names:
        path = folder / name
        assert path.read_bytes().startswith(b"\x89PNG"), name
        assert path.stat().st_size > 5_000, f"{name} looks empty ({path.stat().st_size} bytes)"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("inference")
    return folder, write_report(make_result(), folder)


def test_inference_only_run_writes_every_chart(report: tuple[Path, list[Path]]) -> None:
    folder, paths = report
    names = [p.name for p in paths]
    # An inference-only run keeps the cluster charts but gets no training queue, wait/JCT CDF or Gantt
    # of (no) jobs; chart_notes says why for the report.
    assert names == ["utilization.png", "power.png", *INFERENCE_CHARTS, "report.html"]
    assert not (folder / "queue.png").exists()
    assert chart_notes(make_result()) == [
        "Queue, wait/JCT CDF and Gantt charts left out: the run had no training jobs."]
    assert_images(folder, INFERENCE_CHARTS)
    page = (folder / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(paths) - 1


def test_report_shows_inference_numbers(report: tuple[Path, list[Path]]) -> None:
    page = (report[0] / "report.html").read_text()
    assert "<h2>Inference requests</h2>" in page
    for text in ("<td>requests</td><td>300</td>", "<td>completed</td><td>256</td>", "<td>rejected</td><td>22</td>",
                 "<td>unfinished</td><td>14</td>", "<td>preemptions</td><td>12</td>",
                 "<td>output tokens</td><td>34,000</td>", "<td>tokens/s</td><td>1,234</td>",
                 "<td>SLO attainment</td><td>91.2%</td>", "<td>energy per output token</td><td>0.412 J</td>",
                 "<td>serving energy</td><td>2.5 kWh</td>", "<td>replica busy fraction</td><td>64.0%</td>",
                 "<td>TTFT</td><td>210 ms</td><td>110 ms</td><td>600 ms</td><td>812 ms</td><td>2.0 s</td>",
                 "<td>TPOT</td><td>31 ms</td><td>32.1 ms</td>", "<td>end to end</td><td>6.0 s</td>",
                 "<td>queue delay</td><td>300 ms</td>", "<td>prompt_too_long</td><td>22</td>",
                 "<td>chat</td><td>200</td><td>171</td><td>812 ms</td><td>61 ms</td><td>87.3%</td><td>900</td>",
                 "<td>summarize</td><td>100</td><td>171</td><td>–</td><td>61 ms</td><td>–</td>"):
        assert text in page, text


def test_run_without_inference_writes_no_inference_charts(tmp_path: Path) -> None:
    result = make_result(inference=False)
    assert write_inference_charts(result, tmp_path) == []
    paths = write_report(result, tmp_path)
    assert not any((tmp_path / name).exists() for name in INFERENCE_CHARTS)
    assert "wait_jct_cdf.png" in [p.name for p in paths]  # no requests either: the "no training jobs" panel
    assert "Inference requests" not in (tmp_path / "report.html").read_text()


def test_long_replica_timeseries_is_binned(tmp_path: Path) -> None:
    result = make_result(ts_rows=40_000)
    assert [p.name for p in write_inference_charts(result, tmp_path)] == INFERENCE_CHARTS
    assert_images(tmp_path, INFERENCE_CHARTS)
    ts, replica = result.replica_timeseries, result.replicas
    assert ts is not None and replica is not None
    times, values = replica_levels(ts[ts["replica_id"] == 0], replica.iloc[0], END)
    assert len(times) == BINS + 1 and values.shape == (BINS + 1, 2)
    assert times[-1] == END  # replica 0 never stopped: its last level holds until the end of the run
    assert np.nanmin(values[:, 1]) >= 0 and np.nanmax(values[:, 1]) <= 100


def test_short_series_hold_until_stop(tmp_path: Path) -> None:
    result = make_result()
    ts, replica = result.replica_timeseries, result.replicas
    assert ts is not None and replica is not None
    rows = ts[ts["replica_id"] == 2]
    times, values = replica_levels(rows, replica.iloc[2], END)
    assert len(times) == len(rows) + 1 and times[-1] == 400.0
    assert values[-1, 0] == rows.sort_values("time_s")["batch"].iloc[-1]


def test_many_replicas_and_no_slo(tmp_path: Path) -> None:
    result = make_result(slos={"chat": {"ttft": None, "tpot": None}, "summarize": {}})
    result = result.replace(replicas=replicas_frame(20),
                                 replica_timeseries=replica_timeseries_frame(400, replicas=20))
    assert slo_targets(result) == {"chat": {}, "summarize": {}}
    write_inference_charts(result, tmp_path)
    assert_images(tmp_path, INFERENCE_CHARTS)


def test_slo_targets_parse_quantities() -> None:
    assert slo_targets(make_result()) == {"chat": {"ttft": 0.5, "tpot": 0.05}, "summarize": {"ttft": 4.0}}


def test_empty_and_sparse_frames_still_draw(tmp_path: Path) -> None:
    result = make_result()
    requests, replicas, ts = result.requests, result.replicas, result.replica_timeseries
    assert requests is not None and replicas is not None and ts is not None
    empty = result.replace(requests=requests.iloc[:0], replicas=replicas.iloc[:0],
                                replica_timeseries=ts.iloc[:0])
    assert [p.name for p in write_inference_charts(empty, tmp_path)] == INFERENCE_CHARTS
    only_rejected = result.replace(requests=requests[requests["state"] == "rejected"])
    assert [p.name for p in write_inference_charts(only_rejected, tmp_path)] == INFERENCE_CHARTS


def test_html_tolerates_missing_and_null_values(tmp_path: Path) -> None:
    result = make_result()
    summary = {**result.summary, "inference": {"requests": 3, "ttft_s": None, "slo_attainment": None,
                                               "rejected_by_reason": {}, "services": {"chat": None}}}
    page = write_report_html(result.replace(summary=summary), tmp_path, []).read_text()
    assert "<td>requests</td><td>3</td>" in page and "<td>SLO attainment</td><td>–</td>" in page
    assert "rejected because" not in page and "<td>chat</td>" in page


def test_reloaded_result_redraws(tmp_path: Path) -> None:
    result = make_result()
    reloaded = RunResult.load(result.save(tmp_path / "run"))
    assert reloaded.requests is not None and len(reloaded.requests) == 300
    (tmp_path / "charts").mkdir()
    paths = write_report(reloaded, tmp_path / "charts")
    assert [p.name for p in paths][-5:] == [*INFERENCE_CHARTS, "report.html"]


def test_binned_lines_break_at_bins_without_requests() -> None:
    """Requests in the first and last sixth of the run only: the bins between hold NaN, not a bridge."""
    requests = requests_frame()
    gap = requests[(requests["arrival_s"] < END / 6) | (requests["arrival_s"] > 5 * END / 6)]
    centers, medians = arrival_bins(gap, "ttft_s", END, lambda g: g.median())
    assert len(centers) == len(medians) == TIME_BINS
    assert centers[0] == END / TIME_BINS / 2 and centers[-1] == END - END / TIME_BINS / 2
    values = medians.to_numpy(dtype=float)
    middle = (centers > END / 6 + END / TIME_BINS) & (centers < 5 * END / 6 - END / TIME_BINS)
    assert middle.any() and np.isnan(values[middle]).all()
    assert np.isfinite(values[centers < END / 6]).sum() > 5
    empty, nothing = arrival_bins(gap.iloc[:0], "ttft_s", END, lambda g: g.median())
    assert len(empty) == 0 and len(nothing) == 0


def test_replica_legend_label() -> None:
    rows = replicas_frame()
    assert [replica_label(i, row) for i, row in rows.iterrows()] == [
        "chat/0 (H100 x2)", "chat/1 (H100 x2)", "summarize/2 (H100 x2)"]
    assert replica_label(5, pd.Series(dtype=object)) == "5"
