"""`dcsim sweep` and `dcsim size` as a user runs them: a real kill midway then a rerun, and bad input
answered with one line, exit 2 and nothing written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.test_sweep import write_scenario

ROOT = Path(__file__).resolve().parents[1]


def dcsim(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cwd: Path,
          *args: str) -> tuple[int, str, str]:
    """The command in this process (the kill test below runs a real one): exit code, stdout, stderr."""
    from dcsim.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["dcsim", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_killed_sweep_resumes_keeping_finished_rows(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    args = [sys.executable, "-m", "dcsim", "sweep", str(scenario), "--grid", "cluster.node_pools.0.count=5,6,7,8",
            "--grid", "policies.scheduler.name=fifo,sjf", "--seeds", "2", "--workers", "2", "--no-charts",
            "--set", "workload.training.jobs=1500", "-o", "out"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "out" / "runs.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if runs.is_file() and runs.read_bytes().count(b"\n") >= 4:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the sweep ended before it could be killed; make its runs longer"
    workers = children(process.pid)
    assert workers or not Path("/proc").is_dir(), "two local workers were started"
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if alive(pid)], "worker processes outlived the killed sweep"
    before = runs.read_bytes()
    finished = before[: before.rfind(b"\n") + 1].splitlines()
    assert 4 <= len(finished) < 16
    assert not (tmp_path / "out" / "sweep_runs.csv").exists()

    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = runs.read_bytes().splitlines()
    assert after[: len(finished)] == finished, "finished runs are kept byte for byte"
    assert len(after) == 16, "only the missing runs ran"
    assert f"{16 - len(finished)} run now, {len(finished)} reused" in done.stdout
    table = pd.read_csv(tmp_path / "out" / "sweep_runs.csv")
    assert len(table) == 16 and (table["status"] == "ok").all()
    import json

    kept = {json.loads(line)["key"]: json.loads(line) for line in finished}
    for _, row in table[table["key"].isin(kept)].iterrows():
        record = kept[row["key"]]
        assert row["wall_s"] == record["wall_s"]  # the wall time of the first run: not run again
        assert row["wait_mean_s"] == record["metrics"]["wait_mean_s"]


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux /proc; empty elsewhere)."""
    found = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in path.read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs and is not a zombie (a killed worker is reaped by init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(("args", "message"), [
    (("sweep", "S", "--grid", "cluster.node_pools.0.cout=5,6"),
     "error: {S}: sweep key cluster.node_pools.0.cout: cluster.node_pools.0.cout is not a scenario field; "
     "did you mean cluster.node_pools.0.count?"),
    (("sweep", "S", "--grid", "cluster.node_pools.0.count=5,lots"),
     "error: {S} [cluster.node_pools.0.count=lots]: cluster.node_pools.0.count: Input should be a valid integer, "
     "got 'lots'"),
    (("sweep", "S", "--grid", "cluster.node_pools.0.count="),
     "error: --grid cluster.node_pools.0.count: expected at least one value, got none"),
    (("sweep", "S"), "error: sweep: nothing to vary; give --grid, --zip or --random (or a sweep file)"),
    (("sweep", "S", "--grid", "cluster.node_pools.0.count=5", "--dask", "tcp://127.0.0.1:9"),
     "error: --dask tcp://127.0.0.1:9: cannot reach a Dask scheduler there (OSError); is it running?"),
    (("size", "S", "--vary", "cluster.node_pools.0.count", "--target", "wait_mean <= 60"),
     "error: --target: unknown metric 'wait_mean'; did you mean wait_mean_s"),
    (("size", "S", "--vary", "cluster.node_pools.0.name", "--target", "wait_mean_s <= 60"),
     "error: {S}: --vary cluster.node_pools.0.name: expected an integer field, got 'p'"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, args: tuple[str, ...], message: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    if "--dask" in args:
        pytest.importorskip("distributed", reason="dask extra not installed")
    scenario = write_scenario(tmp_path)
    code, _out, err = dcsim(monkeypatch, capsys, tmp_path, *[str(scenario) if a == "S" else a for a in args],
                            "-o", "out")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.replace("{S}", str(scenario))), err
    assert not (tmp_path / "out").exists()


def test_sweep_command_prints_the_table_and_writes_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write_scenario(tmp_path)
    code, out, err = dcsim(monkeypatch, capsys, tmp_path, "sweep", str(scenario), "--grid",
                           "cluster.node_pools.0.count=5,6", "--seeds", "2", "--workers", "1", "--metric", "jct_mean_s")
    assert code == 0, err
    assert "4 runs (4 run now, 0 reused from the folder, 0 failed)" in out
    folder = tmp_path / "reports" / "mmc-sweep"
    assert {p.name for p in folder.iterdir()} >= {"runs.jsonl", "sweep_runs.csv", "sweep_runs.parquet",
                                                  "sweep_summary.csv", "sweep.html", "charts", ".dcsim-output"}
    assert sorted(p.name for p in (folder / "charts").iterdir()) == [
        "jct_mean_s_vs_cluster_node_pools_0_count.png", "pareto_accelerators_jct_mean_s.png"]
