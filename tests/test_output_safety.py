"""Output folders and worker processes: dcsim never deletes what it did not write, never leaves
its temporaries or workers behind, and writes CSVs spreadsheets will not run as formulas."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dcsim.comparison import Comparison, usable_workers
from dcsim.output_folders import MARKER, csv_safe
from dcsim.results import RunResult
from tests.helpers import SCENARIOS
from tests.test_cli import dcsim

QUICK = str(SCENARIOS / "quickstart.yaml")
SMALL = ("--set", "workload.training.jobs=20", "--no-charts")


def written_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MARKER)


# --- task 1: replace only folders dcsim wrote, and only the files it wrote -------------------------------

@pytest.mark.parametrize("old_marker", ["summary.json", "comparison_runs.csv"])
def test_folder_that_merely_holds_a_summary_is_not_replaced(tmp_path: Path, old_marker: str) -> None:
    """A folder with a summary.json (a dcsim folder from before the marker, or the user's own) and other
    files: refused with a one-line error, everything kept."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / old_marker).write_text("{}")
    (project / "notes.txt").write_text("keep")
    done = dcsim("run", QUICK, "-o", str(project), *SMALL)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {project}: ")
    assert "remove it or choose another output path" in done.stderr
    assert sorted(p.name for p in project.iterdir()) == sorted([old_marker, "notes.txt"])
    assert (project / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"], "no temporary folder left"


def test_marker_lists_every_file_and_a_rerun_replaces_them(tmp_path: Path) -> None:
    out = tmp_path / "r"
    assert dcsim("run", QUICK, "-o", str(out), "--set", "workload.training.jobs=20").returncode == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["tool"] == "dcsim" and marker["kind"] == "run" and marker["name"] == "quickstart"
    assert marker["version"] == dcsim("--version").stdout.split()[-1]
    assert marker["files"] == written_files(out) and "report.html" in marker["files"]
    assert dcsim("run", QUICK, "-o", str(out), *SMALL).returncode == 0  # no charts this time
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == written_files(out) and "report.html" not in marker["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.parametrize(("foreign", "named"), [
    ("notes.txt", "notes.txt"), ("frames/mine.parquet", "frames/mine.parquet"), ("analysis/plot.png", "analysis")])
def test_a_file_dcsim_did_not_write_blocks_the_replacement(tmp_path: Path, foreign: str, named: str) -> None:
    out = tmp_path / "r"
    assert dcsim("run", QUICK, "-o", str(out), *SMALL).returncode == 0
    before = written_files(out)
    (out / foreign).parent.mkdir(exist_ok=True)
    (out / foreign).write_text("mine")
    done = dcsim("run", QUICK, "-o", str(out), *SMALL)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {out}: holds files dcsim did not write ({named}); "
                                   "move them elsewhere or choose another output path")
    assert (out / foreign).read_text() == "mine"
    assert sorted(set(written_files(out)) - {foreign}) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_comparison_folders_carry_the_marker_too(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = ("compare", QUICK, "--policy", "scheduler=fifo", "--seeds", "1", "--set", "workload.training.jobs=20",
            "-o", str(out))
    assert dcsim(*args).returncode == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "comparison" and marker["files"] == written_files(out)
    (out / "notes.txt").write_text("mine")
    done = dcsim(*args)
    assert done.returncode == 2 and "holds files dcsim did not write (notes.txt)" in done.stderr
    assert (out / "notes.txt").read_text() == "mine"


# --- task 2: temporaries of killed runs are cleaned up, and only dcsim's own --------------------------

def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_killed_runs_are_removed(tmp_path: Path) -> None:
    host = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
    gone = dead_pid()
    stale_tmp = tmp_path / f".r.tmp-{host}-{gone}-abc123"  # killed while filling its temporary folder
    stale_tmp.mkdir()
    (stale_tmp / MARKER).write_text(json.dumps({"tool": "dcsim", "files": None}))
    (stale_tmp / "summary.json").write_text("{}")
    empty_tmp = tmp_path / f".other.tmp-{host}-{gone}-x_9"  # killed before writing anything
    empty_tmp.mkdir()
    stale_old = tmp_path / f".r.old-{host}-{gone}-def456"  # killed between moving old results aside and deleting
    (stale_old / "r" / "frames").mkdir(parents=True)
    (stale_old / "r" / "frames" / "jobs.parquet").write_text("x")
    (stale_old / "r" / MARKER).write_text(json.dumps({"tool": "dcsim", "files": ["frames/jobs.parquet"]}))
    keep = {
        "no marker": tmp_path / f".r.tmp-{host}-{gone}-zzz111",  # named like ours, holds someone's file
        "live writer": tmp_path / f".r.tmp-{host}-{os.getpid()}-yyy222",  # its writer (this test) still runs
        "old with a user file": tmp_path / f".r.old-{host}-{gone}-www333",
        "other host, fresh": tmp_path / f".r.tmp-00000000-{gone}-vvv444",
    }
    for folder in keep.values():
        folder.mkdir()
    (keep["no marker"] / "mine.txt").write_text("mine")
    (keep["live writer"] / MARKER).write_text(json.dumps({"tool": "dcsim", "files": None}))
    (keep["old with a user file"] / "r").mkdir()
    (keep["old with a user file"] / "r" / "mine.txt").write_text("mine")
    (keep["old with a user file"] / "r" / MARKER).write_text(json.dumps({"tool": "dcsim", "files": []}))
    (keep["other host, fresh"] / MARKER).write_text(json.dumps({"tool": "dcsim", "files": None}))

    done = dcsim("run", QUICK, "-o", str(tmp_path / "r"), *SMALL)
    assert done.returncode == 0, done.stderr
    assert not stale_tmp.exists() and not empty_tmp.exists() and not stale_old.exists()
    for why, folder in keep.items():
        assert folder.is_dir(), why
    assert (keep["no marker"] / "mine.txt").read_text() == "mine"
    assert (keep["old with a user file"] / "r" / "mine.txt").read_text() == "mine"


# --- task 3: compare's workers die with it and are no more than useful -----------------------------

def children(pid: int) -> set[int]:
    """Live processes whose parent is `pid`, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs for two workers")
def test_killing_compare_kills_its_workers(tmp_path: Path) -> None:
    """--workers 12 with two runs starts two workers (plus multiprocessing's resource tracker), and a
    SIGKILLed parent takes them with it instead of leaving them to simulate or wait forever."""
    parent = subprocess.Popen([sys.executable, "-m", "dcsim", "compare", QUICK, "--policy", "scheduler=fifo",
                               "--policy", "scheduler=sjf", "--seeds", "1", "--workers", "12",
                               "--set", "workload.training.jobs=20000", "-o", str(tmp_path / "cmp")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and parent.poll() is None:
            now = children(parent.pid)
            seen |= now
            for child in now:
                seen |= children(child)
            if len(now) >= 2:
                break
            time.sleep(0.1)
        assert parent.poll() is None, f"compare ended before it could be killed: {parent.stderr}"
        assert 2 <= len(seen) <= 3, f"expected 2 workers and a resource tracker, saw {len(seen)} processes"
        time.sleep(1.0)  # the workers are simulating now
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in seen):
            time.sleep(0.1)
        survivors = [pid for pid in seen if alive(pid)]
    finally:  # leave nothing running, whatever failed: the parent started its own process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
    assert not survivors, f"{len(survivors)} worker processes outlived the killed compare"
    assert not (tmp_path / "cmp").exists()


def test_dcsim_compare_stays_callable_once_the_module_is_imported() -> None:
    """This file imports dcsim.comparison (the module) at the top. When the module was dcsim/compare.py,
    importing it replaced the package's `compare` function with the module, and `dcsim.compare(...)`
    failed in every later test and in user code that touched dcsim.Comparison first."""
    import dcsim as package

    comparison = package.compare(QUICK, ["scheduler=fifo"], 1, overrides=["workload.training.jobs=5"])
    assert isinstance(comparison, Comparison) and len(comparison.table) == 1


def test_workers_are_capped_at_tasks_and_cpus() -> None:
    assert usable_workers(12, 1) == 1
    assert usable_workers(12, 1000) == min(12, len(os.sched_getaffinity(0)))
    assert usable_workers(1, 1000) == 1


# --- task 6: no formulas in CSVs ---------------------------------------------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", "+cmd", "-2+3", "@SUM(A1)", "plain"]


def test_formula_like_job_names_are_quoted_in_csv_and_exact_in_parquet(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("submit,duration,accelerators,name\n" + "".join(
        f"{i * 10},{100 + i},1,{name}\n" for i, name in enumerate(FORMULAS)))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: formulas\nseed: 1\ncluster:\n  node_pools:\n    - {name: '=pool', count: 1, accelerator: H100, "
        "accelerators_per_node: 8}\nworkload:\n  training:\n    source: trace\n    path: t.csv\n"
        "    columns: {name: name}\npolicies: {scheduler: fifo, placement: pack}\n")
    out = tmp_path / "r"
    done = dcsim("run", str(scenario), "-o", str(out), "--no-charts")
    assert done.returncode == 0, done.stderr
    jobs_csv = pd.read_csv(out / "jobs.csv")
    assert list(jobs_csv["name"]) == ["'" + n if n[0] in "=+-@" else n for n in FORMULAS]
    text = (out / "jobs.csv").read_text() + (out / "timeseries.csv").read_text()
    assert "\n=" not in text and ",=" not in text and ",+" not in text and ",@" not in text
    reloaded = RunResult.load(out)
    assert list(reloaded.jobs["name"]) == FORMULAS  # parquet keeps the exact names


def test_csv_safe_touches_only_text_cells() -> None:
    frame = pd.DataFrame({"name": ["=1+1", "-x", "ok", None], "value": [-1.5, 2.0, -3.0, 4.0], "n": [-1, 2, 3, 4],
                          "kind": pd.Categorical(["@a", "b", "b", "b"]), "=col": ["a", "b", "c", "d"]})
    safe = csv_safe(frame)
    assert list(safe["name"][:3]) == ["'=1+1", "'-x", "ok"] and pd.isna(safe["name"][3])
    assert safe["value"].tolist() == [-1.5, 2.0, -3.0, 4.0] and safe["n"].tolist() == [-1, 2, 3, 4]
    assert list(safe["kind"]) == ["'@a", "b", "b", "b"]
    assert "'=col" in safe.columns
    assert frame["name"][0] == "=1+1" and "=col" in frame.columns, "the frame itself is unchanged"


def test_comparison_csvs_are_quoted_too(tmp_path: Path) -> None:
    table = pd.DataFrame({"variant": ["=evil", "=evil", "ok", "ok"], "seed": [1, 2, 1, 2],
                          "wait_mean_s": [-1.0, 2.0, 3.0, 4.0]})
    jobs = pd.DataFrame({"wait_s": [1.0, 2.0], "jct_s": [2.0, 3.0], "state": ["completed"] * 2, "seed": [1, 2]})
    comparison = Comparison("s", ["=evil", "ok"], [1, 2], table, {"=evil": jobs, "ok": jobs})
    folder = comparison.save(tmp_path / "cmp")
    runs = (folder / "comparison_runs.csv").read_text()
    summary = (folder / "comparison_summary.csv").read_text()
    assert "'=evil,1,-1.0" in runs and "\n=" not in runs
    assert "\n'=evil," in summary and "\n=" not in summary
