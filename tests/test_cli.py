"""The dcsim command as a user runs it: exit codes, one-line errors, atomic output folders."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import SCENARIOS

QUICK = str(SCENARIOS / "quickstart.yaml")


def dcsim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dcsim", *args], capture_output=True, text=True, cwd=cwd)


def test_run_writes_the_metrics_contract(tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = dcsim("run", QUICK, "-o", str(out), "--set", "workload.training.jobs=60")
    assert done.returncode == 0, done.stderr
    for name in ("summary.json", "jobs.csv", "timeseries.csv", "scenario.yaml", "report.html", "utilization.png",
                 "queue.png", "wait_jct_cdf.png", "power.png", "gantt.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    for key in ("scenario", "seed", "dcsim_version", "sim_time_s", "wall_time_s", "training", "utilization",
                "queue", "energy"):
        assert key in summary
    assert set(summary["training"]) >= {"jobs_submitted", "jobs_completed", "jobs_unfinished", "wait_s", "jct_s",
                                        "slowdown", "makespan_s"}
    assert set(summary["energy"]["by_component_kwh"]) == {"accelerators", "hosts", "network", "storage"}
    assert f"results written to {out}" in done.stdout
    assert not list(tmp_path.glob(".report.*")), "temporary folders left behind"


def test_rerun_replaces_the_folder_atomically(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert dcsim("run", QUICK, "-o", str(out), "--set", "workload.training.jobs=20").returncode == 0
    assert (out / "report.html").is_file()
    assert dcsim("run", QUICK, "-o", str(out), "--set", "workload.training.jobs=20", "--no-charts").returncode == 0
    assert not (out / "report.html").exists(), "files of the previous run are replaced, not merged"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    (out / "stale.txt").write_text("mine")  # a file dcsim did not write: never deleted (tests/test_output_safety.py)
    assert dcsim("run", QUICK, "-o", str(out), "--set", "workload.training.jobs=20", "--no-charts").returncode == 2
    assert (out / "stale.txt").read_text() == "mine"


@pytest.mark.parametrize(("args", "message"), [
    (("run", "missing.yaml"), "error: missing.yaml: file not found"),
    (("run", QUICK, "--set", "policies.scheduler=bogus"),
     f"error: {QUICK}: policies.scheduler: unknown scheduler policy 'bogus' "
     "(choices: easy_backfill, fifo, gavel, las, priority, sjf, srtf, tiresias)"),
    (("run", QUICK, "--set", "policies.scheduler.max_scn=5"),
     f"error: {QUICK}: policies.scheduler: scheduler policy 'easy_backfill': unknown parameter 'max_scn' "
     "(parameters: max_scan)"),
    (("run", QUICK, "--set", "policies.scheduler=easy_backfill", "--set", "policies.scheduler.max_scan=1.5"),
     f"error: {QUICK}: policies.scheduler: scheduler policy 'easy_backfill': parameter 'max_scan' expects int, "
     "got 1.5"),
    (("run", QUICK, "--set", "energy.pue=.inf"),
     f"error: {QUICK}: energy.pue: Input should be a finite number, got inf"),
    (("run", QUICK, "--set", "cluster.node_pools.0.count=0"),
     f"error: {QUICK}: cluster.node_pools.0.count: Input should be greater than or equal to 1, got 0"),
    (("run", QUICK, "--set", "nonsense"), "error: --set 'nonsense': expected dotted.key=value"),
    (("compare", QUICK, "--policy", "scheduler=fifo", "--seeds", "0"),
     "error: --seeds: expected a number from 1 to 10000, got 0"),
    (("run", QUICK, "--seed", "-5"), "error: --seed: expected an integer >= 0, got -5"),
    (("compare", QUICK, "--policy", "schedular=fifo"),
     "error: --policy 'schedular=fifo': expected FAMILY=NAME or FAMILY.PARAM=VALUE "
     "with FAMILY one of scheduler, placement, replica_scheduler, balancer, autoscaler, power"),
])
def test_user_errors_print_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    out = tmp_path / "out"
    done = dcsim(*args, "-o", str(out))
    assert done.returncode == 2
    assert done.stderr.strip() == message
    assert "Traceback" not in done.stderr
    assert not out.exists(), "nothing may be written on error"


def test_trace_with_missing_column_fails_cleanly(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("submit,duration\n1,2\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(Path(QUICK).read_text().replace(
        "source: synthetic", "source: trace\n    path: t.csv").replace("    jobs: 300\n", "").replace(
        "    arrival: {process: gamma, rate: 8/h, cv: 2.0}\n", "").replace(
        "    accelerators: {values: [1, 2, 4, 8, 16, 32], weights: [40, 15, 15, 20, 7, 3]}\n", "").replace(
        "    duration: {distribution: lognormal, median: 2h, sigma: 1.2}\n", ""))
    done = dcsim("run", str(scenario), "-o", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"error: {trace}: missing column 'accelerators' for accelerators (columns "
                                   "present: submit, duration); set workload.training.columns.accelerators")
    validated = dcsim("validate", str(scenario))
    assert validated.returncode == 2
    assert "workload.training.path:" in validated.stderr and "missing column 'accelerators'" in validated.stderr


def test_validate_reports_ok_and_all_problems(tmp_path: Path) -> None:
    done = dcsim("validate", QUICK)
    assert done.returncode == 0 and "ok (3 node pools, 128 accelerators)" in done.stdout
    bad = dcsim("validate", QUICK, "--set", "cluster.node_pools.0.accelerator=H1000", "--set", "energy.pue=0.5")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"error: {QUICK}: ") for line in lines), "the same form as run's errors"
    assert any("energy.pue: Input should be greater than or equal to 1, got 0.5" in line for line in lines)
    assert any("cluster.node_pools.0.accelerator: unknown accelerator 'H1000'" in line for line in lines)


def test_debug_shows_the_traceback() -> None:
    done = dcsim("--debug", "run", "missing.yaml")
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_schema_and_policies_commands() -> None:
    schema = json.loads(dcsim("schema").stdout)
    assert "cluster" in schema["properties"] and "node_pools" in json.dumps(schema)
    listing = dcsim("policies").stdout
    for name in ("fifo", "sjf", "easy_backfill", "pack", "spread", "max_scan=1000"):
        assert name in listing


@pytest.mark.parametrize("columns", ["80", "40"])
def test_policies_never_cut_names_or_parameters(columns: str) -> None:
    """Without a terminal rich lays tables out for COLUMNS (80 by default) and used to cut long names."""
    registered = subprocess.run([sys.executable, "-c", (  # in a fresh process: other tests register policies here
        "import json; from dcsim.policies import describe; from dcsim.policies.registry import FAMILIES; "
        "print(json.dumps([[n, [f'{k}={v!r}' for k, v in p.items()]] for f in FAMILIES for n, _, p in describe(f)]))")],
        capture_output=True, text=True, check=True)
    done = subprocess.run([sys.executable, "-m", "dcsim", "policies"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": columns})
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout
    cells = {cell.strip() for line in done.stdout.splitlines() for cell in line.split("│")}
    for name, params in json.loads(registered.stdout):
        assert name in cells, name
        for param in params:
            assert param in cells, param
    if columns == "80":
        assert max(len(line) for line in done.stdout.splitlines()) <= 80


def test_version() -> None:
    import dcsim as package

    done = dcsim("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"dcsim {package.__version__}"


def test_run_summary_counts_unfinished_and_rejected_jobs(tmp_path: Path) -> None:
    done = dcsim("run", QUICK, "-o", str(tmp_path / "r"), "--no-charts", "--set", "horizon=6h",
                 "--set", "workload.training.accelerators={values: [1, 512], weights: [9, 1]}")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())["training"]
    assert summary["jobs_unfinished"] > 0 and summary["jobs_rejected"] > 0
    assert (f"{summary['jobs_completed']} / {summary['jobs_submitted']} ({summary['jobs_unfinished']} unfinished, "
            f"{summary['jobs_rejected']} rejected, {summary['jobs_failed']} failed)") in done.stdout


def test_long_scenario_name_fails_before_simulating_or_is_shortened(tmp_path: Path) -> None:
    """A 300-character name cannot be a folder name (255 bytes at most): the default folder uses the first
    100 characters; an explicit -o that long is refused at once, not after a long simulation."""
    scenario = tmp_path / "long.yaml"
    scenario.write_text(Path(QUICK).read_text().replace("name: quickstart", "name: " + "n" * 300))
    done = dcsim("run", str(scenario), "--no-charts", "--set", "workload.training.jobs=20", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reports" / ("n" * 100) / "summary.json").is_file()
    too_long = tmp_path / ("o" * 300)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dcsim", "run", str(scenario), "-o", str(too_long),
                           "--set", "workload.training.jobs=300000"], capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 60, "the name is checked before simulating"
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"error: {too_long}: name {'o' * 40}... is 300 bytes long; at most 255 allowed "
                                   "here; choose a shorter output path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.yaml", "reports"]


def test_compare_writes_table_csv_and_charts(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    done = dcsim("compare", QUICK, "--policy", "scheduler=fifo", "--policy", "scheduler=easy_backfill",
                 "--seeds", "2", "--set", "workload.training.jobs=60", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "mean ± 95% CI over 2 seeds" in done.stdout
    wait = next(line for line in done.stdout.splitlines() if "wait_mean_s" in line)
    assert re.search(r"\d (s|min|h|d) ± [\d.]+ (ms|s|min|h|d)", wait), wait  # durations in human units
    assert "e+" not in done.stdout
    for name in ("comparison_runs.csv", "comparison_summary.csv", "comparison_metrics.png", "comparison_wait_cdf.png"):
        assert (out / name).is_file(), name
    runs = (out / "comparison_runs.csv").read_text().splitlines()
    assert len(runs) == 1 + 2 * 2


@pytest.mark.parametrize("target", ["cwd", "file", "foreign"])
def test_output_never_replaces_something_that_is_not_dcsim_output(tmp_path: Path, target: str) -> None:
    (tmp_path / "notes.txt").write_text("important")
    out = {"cwd": ".", "file": "notes.txt", "foreign": str(tmp_path)}[target]
    cwd = tmp_path.parent if target == "foreign" else tmp_path
    done = dcsim("run", QUICK, "-o", out, "--no-charts", cwd=cwd)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert "choose another output path" in done.stderr or "refusing to write results over" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "important"


def test_results_folder_is_readable_by_others(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert dcsim("run", QUICK, "-o", str(out), "--no-charts", "--set", "workload.training.jobs=5").returncode == 0
    assert out.stat().st_mode & 0o044 == 0o044  # group and others may read (mkdtemp would make it 0700)
