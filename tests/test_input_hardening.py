"""Hostile and broken input: every case ends in one clear line (or a counted bad row), never a hang,
a traceback, a huge message or a silently dropped row. Real files, real runs, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import dcsim
from dcsim.calibration.table import read_measurements
from dcsim.errors import CalibrationError, ScenarioError, TraceError
from dcsim.scenario import load_scenario, scenario_from_dict
from tests.helpers import SCENARIOS, SHARED_DATA, tiny_scenario
from tests.helpers import scenario_problems as problems
from tests.helpers import write_yaml as write

QUICK = SCENARIOS / "quickstart.yaml"


def dcsim_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dcsim", *args], capture_output=True, text=True, timeout=timeout)



def one_problem(path: Path, overrides: list[str] | None = None) -> str:
    found = problems(path, overrides)
    assert len(found) == 1, found
    assert "\n" not in found[0]
    return found[0]


# --- 1. alias bombs and echoed values --------------------------------------------------------------


def alias_bomb() -> str:
    lines = ["l0: &l0 [a, a, a, a, a, a, a, a, a, a]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_once_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    assert len(alias_bomb()) < 600
    started = time.perf_counter()
    done = dcsim_cli("validate", str(path), timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert f"{path}: line 4, column" in done.stderr and "aliases expand to more than 10000 nodes" in done.stderr
    assert time.perf_counter() - started < 30


def test_anchors_and_merge_keys_within_the_budget_still_work(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: anchors\ncluster:\n  node_pools:\n    - &pool {name: a, count: 3, accelerator: H100}\n"
                    "    - {<<: *pool, name: b}\n    - *pool\n"
                    "workload:\n  training: {source: synthetic, jobs: 5, arrival: {rate: 1/h},\n"
                    "             duration: {distribution: constant, value: 1h}}\n")
    found = problems(path)  # the plain alias repeats pool a: the pool-name check, not the loader, objects
    assert found == [f"{path}: cluster: node pool names must be unique; 'a' appears twice"]
    path.write_text(path.read_text().replace("    - *pool\n", ""))
    pools = load_scenario(path).cluster.node_pools
    assert [(pool.name, pool.count) for pool in pools] == [("a", 3), ("b", 3)]


def test_echoed_values_are_short_excerpts(tmp_path: Path) -> None:
    huge = "x" * 100_000
    data = tiny_scenario(seed=huge)
    data["cluster"]["node_pools"][0]["accelerator"] = huge
    data["workload"]["training"][huge] = 1
    data["workload"]["training"]["startup"] = huge
    data["workload"]["training"]["duration"]["distribution"] = huge
    found = problems(write(tmp_path, data))
    assert len(found) == 5, found
    assert all(len(line) < 400 for line in found), [len(line) for line in found]
    assert any("seed: Input should be a valid integer, got 'xxx" in line and line.endswith("…") for line in found)
    with pytest.raises(ScenarioError) as info:
        load_scenario(QUICK, [f"name.{huge}=1"])
    assert len(str(info.value)) < 400


# --- 2. encodings, nesting, duplicate keys, YAML 1.2 floats, booleans ------------------------------


@pytest.mark.parametrize(("encoding", "fragment"), [
    ("utf-16", "not UTF-8 text (UTF-16?): byte 0xff at offset 0"),
    ("latin-1", "not UTF-8 text: byte 0xe9 at offset"),
])
def test_files_that_are_not_utf8_are_one_line_errors(tmp_path: Path, encoding: str, fragment: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(yaml.safe_dump(tiny_scenario(description="café"), allow_unicode=True).encode(encoding))
    line = one_problem(path)
    assert line.startswith(f"{path}: {fragment}") and line.endswith("; save the file as UTF-8"), line


def test_deep_nesting_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: " + "[" * 1000 + "]" * 1000 + "\n")
    assert "invalid YAML: nested more than 64 levels deep" in one_problem(path)
    with pytest.raises(ScenarioError, match="nested more than 64 levels deep"):
        load_scenario(QUICK, ["description=" + "[" * 1000 + "]" * 1000])
    data = tiny_scenario()
    for _ in range(5000):
        data["description"] = [data.get("description", [])]
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data)
    assert info.value.problems == ["<scenario>: description: Input should be a valid string, got [[[[...]]]]"]


def test_duplicate_keys_are_errors_naming_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(QUICK.read_text() + "seed: 99\n")
    first = next(i for i, line in enumerate(QUICK.read_text().splitlines(), 1) if line.startswith("seed:"))
    assert f"invalid YAML: duplicate key 'seed' (first given on line {first})" in one_problem(path)


def test_exponent_floats_are_numbers(tmp_path: Path) -> None:
    data = tiny_scenario()
    path = tmp_path / "s.yaml"
    text = yaml.safe_dump(data).replace("rate: 30/h", "rate: 2e-3")
    path.write_text(text.replace("estimate_error: 0.5", "estimate_error: 5e-1"))
    training = load_scenario(path).workload.training
    assert training is not None and training.arrival.rate == 0.002  # type: ignore[union-attr]
    assert training.estimate_error == 0.5
    overridden = load_scenario(path, ["workload.training.arrival.rate=1e-2", "energy.carbon_intensity=4e2"])
    assert overridden.workload.training.arrival.rate == 0.01  # type: ignore[union-attr]
    assert overridden.energy.carbon_intensity == 400.0


@pytest.mark.parametrize(("override", "line"), [
    ("energy.pue=true", "energy.pue: Input should be a valid number, got True"),
    ("cluster.node_pools.0.count=yes", "cluster.node_pools.0.count: Input should be a valid integer, got True"),
    ("workload.training.accelerators.weights=[1, true, 1, 1]",
     "workload.training.accelerators.weights.1: Input should be a valid number, got True"),
    ("workload.training.models.LM=false", "workload.training.models.LM: Input should be a valid number, got False"),
    ("workload.training.startup=true", "workload.training.startup: expected a duration like"),
    ("energy.pue='1.5'", "energy.pue: Input should be a valid number, got '1.5'"),
])
def test_booleans_and_text_are_not_numbers(tmp_path: Path, override: str, line: str) -> None:
    path = write(tmp_path, tiny_scenario())
    assert one_problem(path, [override]).startswith(f"{path}: {line}")


# --- 3. intervals that stall the clock, 4. implausible quantities, 6. job counts -------------------


@pytest.mark.parametrize(("scenario", "overrides", "field"), [
    ("fat_tree_placement.yaml", ["workload.training.checkpoint.interval=1.0e-300"],
     "workload.training.checkpoint.interval"),
    ("shared_h100.yaml", ["workload.inference.services.0.requests.arrival.process=diurnal",
                          "workload.inference.services.0.requests.arrival.period=1e-300"],
     "workload.inference.services.0.requests.arrival.period"),
])
def test_intervals_that_would_stall_the_clock_are_refused(scenario: str, overrides: list[str], field: str) -> None:
    path = SCENARIOS / scenario
    assert one_problem(path, overrides) == (
        f"{path}: {field}: must be >= 0.001 s (shorter intervals stall the simulation clock), got 1e-300 s")


@pytest.mark.parametrize(("override", "field", "limit"), [
    ("energy.pue=1e308", "energy.pue", "Input should be less than or equal to 5"),
    ("energy.carbon_intensity=1e308", "energy.carbon_intensity", "Input should be less than or equal to 5000"),
    ("cluster.node_pools.0.host_power.idle=1e308", "cluster.node_pools.0.host_power.idle", "must be <= 1e+06 W"),
    ("cluster.node_pools.0.host_power.busy=2MW", "cluster.node_pools.0.host_power.busy", "must be <= 1e+06 W"),
    ("workload.training.startup=1e308", "workload.training.startup", "must be <= 3.156e+09 s"),
    ("horizon=1e308", "horizon", "must be <= 3.156e+09 s"),
    ("workload.training.arrival.rate=1e308", "workload.training.arrival.rate", "must be <= 1e+06 per s"),
    ("workload.training.jobs=1000000000", "workload.training.jobs", "Input should be less than or equal to 10000000"),
])
def test_implausible_quantities_are_refused(tmp_path: Path, override: str, field: str, limit: str) -> None:
    path = write(tmp_path, tiny_scenario())
    assert one_problem(path, [override]).startswith(f"{path}: {field}: {limit}")


def test_cli_refuses_overflowing_pue_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = dcsim_cli("run", str(QUICK), "--set", "energy.pue=1e308", "-o", str(out), "--no-charts")
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {QUICK}: energy.pue: Input should be less than or equal to 5, got 1e+308"
    assert not out.exists()


# --- 4, 5. trace cells: implausible values and extra fields are counted bad rows -------------------


def trace_run(tmp_path: Path, text: str, **training: Any) -> dict[str, Any]:
    path = tmp_path / "jobs.csv"
    path.write_text(text)
    data = {"name": "trace", "seed": 5,
            "cluster": {"node_pools": [{"name": "g", "count": 4, "accelerator": "V100"}]},
            "workload": {"training": {"source": "trace", "path": str(path), **training}}}
    summary = dcsim.run(scenario_from_dict(data)).summary
    assert json.dumps(summary, allow_nan=False)  # every number finite
    return summary


def test_gang_sizes_that_overflow_are_counted_bad_rows(tmp_path: Path) -> None:
    summary = trace_run(tmp_path, "submit,duration,accelerators\n0,60,1\n5,60,inf\n6,60,1e19\n"
                                  "7,60,9223372036854775808\n8,60,2097152\n9,60,2\n")
    workload = summary["workload"]
    reason = "accelerators: not a whole number from 1 to 1048576"
    assert workload["skipped"] == {reason: 4}
    assert workload["skipped_example_lines"][reason] == [3, 4, 5, 6]
    assert workload["jobs"] == 2 and summary["training"]["jobs_completed"] == 2


def test_submit_and_duration_out_of_range_are_counted_bad_rows(tmp_path: Path) -> None:
    summary = trace_run(tmp_path, "submit,duration,accelerators\n0,60,1\n1e308,60,1\n-1e308,60,1\n"
                                  "10,1e308,1\n20,60,1\n")
    workload = summary["workload"]
    assert workload["skipped"] == {"duration: longer than 100 years": 1,
                                   "submit: more than 100 years from the trace's median time": 2}
    assert workload["skipped_example_lines"]["duration: longer than 100 years"] == [5]
    assert workload["rows_read"] == workload["jobs"] + sum(workload["skipped"].values())
    assert summary["energy"]["facility_kwh"] is not None


def test_rows_with_extra_fields_are_counted_not_fatal(tmp_path: Path) -> None:
    text = "submit,duration,accelerators\n0,60,1\n5,60,1,7\n6,60,1,7,8,9\n7,60,1,\n8,60,1,,\n"
    workload = trace_run(tmp_path, text)["workload"]
    assert workload["skipped"] == {"more fields than the header": 2}
    assert workload["skipped_example_lines"]["more fields than the header"] == [3, 4]
    assert workload["jobs"] == 3  # empty cells beyond the header (trailing commas) are fine
    fast = trace_run(tmp_path, "submit,duration,accelerators\n0,60,1\n5,60,1,7\n")["workload"]
    assert fast["skipped"] == {"more fields than the header": 1} and fast["jobs"] == 1


def test_request_trace_rows_with_extra_fields_or_far_times_are_counted(tmp_path: Path) -> None:
    from dcsim.engine.rng import stream
    from dcsim.scenario.inference import TraceRequests
    from dcsim.workload import build_requests

    path = tmp_path / "requests.csv"
    path.write_text("arrival,prompt_tokens,output_tokens\n0,10,5\n1,10,5,extra\n2,10,5,a,b\n3,10,5,\n"
                    "1e308,10,5\n")
    spec = TraceRequests.model_validate({"source": "trace", "path": str(path)})
    requests, report = build_requests(spec, 0, str(tmp_path), lambda name: stream(1, name))
    assert len(requests) == 2
    assert report.skipped == {"more fields than the header": 2,
                              "arrival: more than 100 years from the trace's median time": 1}
    assert report.skipped_lines["more fields than the header"] == [3, 4]


# --- 7. devices, pipes and huge files --------------------------------------------------------------


def test_calibration_overlay_that_is_a_device_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, tiny_scenario(calibration=["/dev/zero"]))
    started = time.perf_counter()
    line = one_problem(path)
    assert line == (f"{path}: calibration.0: /dev/zero: cannot read calibration overlay: not a regular file "
                    "(a folder, device or pipe cannot be read as input)")
    assert time.perf_counter() - started < 10


def test_scenario_that_is_a_device_a_pipe_or_huge_is_refused(tmp_path: Path) -> None:
    assert one_problem(Path("/dev/zero")).startswith("/dev/zero: not a regular file")
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: costs no disk
    assert one_problem(huge) == f"{huge}: file is larger than 64 MiB; input files are limited to that size"
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    done = dcsim_cli("validate", str(fifo), timeout=60)  # before the fix: blocks forever
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {fifo}: not a regular file "
                                   "(a folder, device or pipe cannot be read as input)")


def test_trace_and_measurement_files_that_are_devices_are_refused(tmp_path: Path) -> None:
    data = {"name": "t", "cluster": {"node_pools": [{"name": "g", "count": 1, "accelerator": "V100"}]},
            "workload": {"training": {"source": "trace", "path": "/dev/zero"}}}
    with pytest.raises(TraceError, match="/dev/zero: cannot read trace file: not a regular file"):
        dcsim.run(scenario_from_dict(data))
    with pytest.raises(CalibrationError, match=r"cannot read measurement file \(not a regular file"):
        read_measurements(Path("/dev/zero"))


# --- 8. requests after the horizon are counted -----------------------------------------------------


def assert_requests_accounted(summary: dict[str, Any]) -> None:
    for service in summary["inference"]["services"].values():
        workload = service["workload"]
        assert workload["rows_read"] == (service["requests"] + service["requests_after_horizon"]
                                         + sum(workload["skipped"].values()))
    totals = summary["inference"]
    assert totals["requests_after_horizon"] == sum(s["requests_after_horizon"] for s in totals["services"].values())


def test_synthetic_requests_after_the_horizon_are_counted() -> None:
    summary = dcsim.run(SCENARIOS / "shared_h100.yaml", overrides=[
        "workload.training.jobs=5", "workload.inference.services.0.requests.count=3000", "horizon=10min"]).summary
    assert_requests_accounted(summary)
    assert summary["inference"]["requests_after_horizon"] > 0


AZURE_CODE = SHARED_DATA / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_code.csv"


@pytest.mark.skipif(not AZURE_CODE.exists(), reason=f"Azure trace not found at {AZURE_CODE}")
def test_trace_requests_after_the_horizon_are_counted() -> None:
    summary = dcsim.run(SCENARIOS / "azure_code_balancers.yaml", overrides=["horizon=10min"]).summary
    assert_requests_accounted(summary)
    service = summary["inference"]["services"]["code"]
    assert service["workload"]["rows_read"] == 8819
    assert service["requests"] + service["requests_after_horizon"] == 8819
    assert service["requests_after_horizon"] > 0


# --- 10. every echoed value is an excerpt ----------------------------------------------------------


def test_yaml_and_measurement_errors_echo_excerpts(tmp_path: Path) -> None:
    huge = "a" * 100_000
    path = tmp_path / "s.yaml"
    path.write_text(f"name: *{huge}\n")
    line = one_problem(path)
    assert "found undefined alias" in line and len(line) < 400
    measurements = tmp_path / "runs.csv"
    measurements.write_text(f"kind,model,accelerator,time\ntraining,ResNet-50,{huge},1s\n")
    with pytest.raises(CalibrationError) as info:
        read_measurements(measurements)
    assert len(str(info.value).replace(str(measurements), "")) < 450  # the excerpt is clipped; the path is the user's
