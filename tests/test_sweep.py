"""Sweeps through the Python API: spec expansion, keys, equality with plain runs, resuming, failures,
and a real Dask LocalCluster giving the same rows as local processes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import dcsim
from dcsim.comparison import headline
from dcsim.errors import DcsimError, ResultError, ScenarioError
from dcsim.sweep.points import run_key
from dcsim.sweep.spec import SweepSpec, from_options, load_spec_file, split_values
from dcsim.sweep.store import RUNS, FolderStore

MMC: dict[str, Any] = {
    "name": "mmc", "seed": 1,
    "cluster": {"node_pools": [{"name": "p", "count": 4, "accelerator": "V100", "accelerators_per_node": 1,
                                "host_power": {"idle": "0W"}}]},
    "workload": {"training": {
        "source": "synthetic", "jobs": 200, "arrival": {"process": "poisson", "rate": "4/h"},
        "accelerators": {"values": [1]}, "duration": {"distribution": "exponential", "mean": "1h"},
        "models": {"generic": 1.0}}},
    "policies": {"scheduler": "fifo", "placement": "pack"},
}
GRID = ["cluster.node_pools.0.count=5,6", "policies.scheduler.name=fifo,sjf"]


def write_scenario(folder: Path, data: dict[str, Any] = MMC) -> Path:
    path = folder / "mmc.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# --- spec ------------------------------------------------------------------------------------------

def test_values_split_at_top_level_commas_only() -> None:
    assert split_values("1, [2, 3],{a: 1, b: 2}, 'x,y'") == ["1", "[2, 3]", "{a: 1, b: 2}", "'x,y'"]


def test_grid_is_the_product_in_order_and_zip_advances_together() -> None:
    spec = from_options(grid=["a=1,2", "b=x,y"], zipped=["c=10,20", "d=[1],[2]"])
    points = spec.points()
    assert points[:3] == [{"a": 1, "b": "x", "c": 10, "d": [1]}, {"a": 1, "b": "x", "c": 20, "d": [2]},
                          {"a": 1, "b": "y", "c": 10, "d": [1]}]
    assert len(points) == 2 * 2 * 2


def test_random_samples_are_reproducible_and_in_range() -> None:
    spec = from_options(ranges=["n=2..5", "rate=0.5..1.5"], samples=20, sample_seed=7)
    points = spec.points()
    assert points == from_options(ranges=["n=2..5", "rate=0.5..1.5"], samples=20, sample_seed=7).points()
    assert len(points) == 20
    assert all(isinstance(p["n"], int) and 2 <= p["n"] <= 5 for p in points)
    assert all(0.5 <= p["rate"] <= 1.5 for p in points)
    assert {p["n"] for p in points} == {2, 3, 4, 5}  # 20 draws of 4 values: all seen (fixed seed)


def test_sweep_file(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("grid: {a: [1, 2]}\nzip: {b: [x, y], c: [1, 2]}\nrandom: {r: [0, 10]}\nsamples: 3\nseeds: 4\n")
    spec = load_spec_file(path)
    assert (spec.grid, spec.zipped, spec.samples, spec.seeds) == ({"a": [1, 2]}, {"b": ["x", "y"], "c": [1, 2]}, 3, 4)
    assert len(spec.points()) == 2 * 2 * 3
    path.write_text("grids: {a: [1]}\n")
    with pytest.raises(DcsimError, match=r"grids.*unknown key; expected one of grid"):
        load_spec_file(path)


@pytest.mark.parametrize(("spec", "message"), [
    (SweepSpec(), "nothing to vary"),
    (SweepSpec(grid={"a": []}), "--grid a: expected at least one value"),
    (SweepSpec(zipped={"a": [1, 2], "b": [1]}), "same length; a has 2, b has 1"),
    (SweepSpec(grid={"seed": [1, 2]}), "use --seeds"),
    (from_options(ranges=["a=1..2"]), "--samples N"),
])
def test_bad_specs_are_refused(spec: SweepSpec, message: str) -> None:
    with pytest.raises(DcsimError, match=message):
        spec.check()


def test_run_key_names_scenario_seed_and_version() -> None:
    data = {"a": 1}
    assert run_key(data, 1) == run_key({"a": 1}, 1)
    assert len({run_key(data, 1), run_key(data, 2), run_key({"a": 2}, 1), run_key(data, 1, "9.9")}) == 4


# --- runs ------------------------------------------------------------------------------------------

def test_each_row_equals_a_plain_run_with_common_seeds(tmp_path: Path) -> None:
    result = dcsim.sweep(write_scenario(tmp_path), grid=GRID, seeds=2)
    runs = result.runs
    assert list(runs["point"]) == [0, 0, 1, 1, 2, 2, 3, 3] and list(runs["seed"]) == [1, 2] * 4
    assert list(runs["cluster.node_pools.0.count"]) == [5, 5, 5, 5, 6, 6, 6, 6]
    assert (runs["status"] == "ok").all() and result.ran == 8 and result.reused == 0
    row = runs.iloc[7]  # count 6, sjf, seed 2
    plain = dcsim.run(write_scenario(tmp_path), seed=2,
                      overrides=["cluster.node_pools.0.count=6", "policies.scheduler.name=sjf"])
    expected = headline(plain.summary)
    for metric, value in expected.items():
        assert (math.isnan(value) and metric not in runs) or row[metric] == value, metric
    assert row["accelerators"] == 6
    summary = result.summary
    assert list(summary["runs"]) == [2, 2, 2, 2] and "wait_mean_s_ci95" in summary


def test_rerun_reuses_stored_runs_and_adds_only_new_points(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    out = tmp_path / "out"
    first = dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=5,6"], seeds=2, output=out, charts=False)
    lines = (out / RUNS).read_bytes()
    again = dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=5,6"], seeds=2, output=out, charts=False)
    assert (again.ran, again.reused) == (0, 4)
    assert (out / RUNS).read_bytes() == lines
    pd.testing.assert_frame_equal(first.runs, again.runs)
    more = dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=5,6,7"], seeds=2, output=out, charts=False)
    assert (more.ran, more.reused) == (2, 4)
    assert (out / RUNS).read_bytes().startswith(lines)
    pd.testing.assert_frame_equal(more.runs.iloc[:4], first.runs)
    marker = json.loads((out / ".dcsim-output").read_text())
    assert marker["kind"] == "sweep" and {"runs.jsonl", "sweep_runs.parquet", "sweep_runs.csv",
                                          "sweep_summary.csv"} <= set(marker["files"])
    assert len(pd.read_parquet(out / "sweep_runs.parquet")) == 6


def test_charts_and_page(tmp_path: Path) -> None:
    out = tmp_path / "out"
    dcsim.sweep(write_scenario(tmp_path), grid=GRID, seeds=2, output=out, metrics=["wait_mean_s"],
                pareto=["accelerators", "jct_mean_s"])
    charts = sorted(p.name for p in (out / "charts").iterdir())
    assert charts == ["pareto_accelerators_jct_mean_s.png", "wait_mean_s_heatmap.png",
                      "wait_mean_s_vs_cluster_node_pools_0_count.png"]
    page = (out / "sweep.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "Points (mean ± 95% CI over seeds)" in page
    assert set(json.loads((out / ".dcsim-output").read_text())["files"]) >= {f"charts/{c}" for c in charts}


def test_a_failed_run_is_recorded_and_the_others_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dcsim.runner

    real = dcsim.runner.run

    def failing(scenario: Any, seed: int | None = None, **kwargs: Any) -> Any:
        if seed == 2 and scenario.cluster.node_pools[0].count == 5:
            raise RuntimeError("injected failure")
        return real(scenario, seed=seed, **kwargs)

    monkeypatch.setattr(dcsim.runner, "run", failing)  # in-process backend: the patch is seen
    out = tmp_path / "out"
    result = dcsim.sweep(write_scenario(tmp_path), grid=["cluster.node_pools.0.count=5,6"], seeds=2, output=out,
                         workers=1, charts=False)
    assert list(result.runs["status"]) == ["ok", "failed", "ok", "ok"]
    assert result.runs["error"].iloc[1] == "RuntimeError: injected failure"
    assert list(result.summary["failed"]) == [1, 0] and list(result.summary["runs"]) == [1, 2]
    monkeypatch.setattr(dcsim.runner, "run", real)
    kept = dcsim.sweep(write_scenario(tmp_path), grid=["cluster.node_pools.0.count=5,6"], seeds=2, output=out,
                       charts=False)
    assert kept.ran == 0 and kept.failed == 1  # a failure is a result: kept until asked to retry
    retried = dcsim.sweep(write_scenario(tmp_path), grid=["cluster.node_pools.0.count=5,6"], seeds=2, output=out,
                          charts=False, retry_failed=True)
    assert retried.ran == 1 and retried.failed == 0


def test_a_cut_last_line_is_dropped_and_rerun(tmp_path: Path) -> None:
    scenario, out = write_scenario(tmp_path), tmp_path / "out"
    dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=5,6"], output=out, charts=False)
    lines = (out / RUNS).read_bytes().splitlines(keepends=True)
    (out / RUNS).write_bytes(lines[0] + lines[1][:40])  # a kill in the middle of the second append
    result = dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=5,6"], output=out, charts=False)
    assert (result.ran, result.reused, result.dropped_lines) == (1, 1, 1)
    assert (out / RUNS).read_bytes().startswith(lines[0]) and len((out / RUNS).read_bytes().splitlines()) == 2


def test_folder_safety(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ResultError, match="holds no dcsim results"):
        dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=5"], output=foreign)
    out = tmp_path / "out"
    dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=5"], output=out, charts=False)
    (out / "mine.txt").write_text("mine")
    with pytest.raises(ResultError, match=r"files dcsim did not write \(mine\.txt"):
        dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=5"], output=out)
    assert (out / "mine.txt").read_text() == "mine"
    (out / "mine.txt").unlink()
    holder = FolderStore(out.resolve(), "sweep", "mmc")  # a sweep still writing this folder
    try:
        with pytest.raises(ResultError, match="another dcsim sweep is writing"):
            FolderStore(out.resolve(), "sweep", "mmc")
    finally:
        holder.close()
    with pytest.raises(ResultError, match="holds dcsim sweep results, not a size"):
        FolderStore(out.resolve(), "size", "mmc")


def test_bad_points_fail_before_anything_runs(tmp_path: Path) -> None:
    scenario, out = write_scenario(tmp_path), tmp_path / "out"
    with pytest.raises(DcsimError, match=r"cluster.node_pools.0.cout is not a scenario field; "
                                         r"did you mean cluster.node_pools.0.count\?"):
        dcsim.sweep(scenario, grid=["cluster.node_pools.0.cout=5,6"], output=out)
    with pytest.raises(ScenarioError, match=r"\[cluster.node_pools.0.count=many\]: cluster.node_pools.0.count: "
                                            "Input should be a valid integer"):
        dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=4,many"], output=out)
    with pytest.raises(DcsimError, match="unknown metric 'p99'"):
        dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=4"], metrics=["p99"], output=out)
    with pytest.raises(DcsimError, match=r"ttft_p99_s is among the inference metrics, and .* has no inference"):
        dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=4"], metrics=["ttft_p99_s"], output=out)
    assert not out.exists()


# --- Dask ------------------------------------------------------------------------------------------

def test_a_running_dask_cluster_gives_the_local_rows(tmp_path: Path) -> None:
    """A real LocalCluster (worker processes) reached by its tcp:// address, as a remote cluster would be."""
    pytest.importorskip("distributed", reason="dask extra not installed")
    import logging

    from distributed import LocalCluster

    scenario = write_scenario(tmp_path)
    local = dcsim.sweep(scenario, grid=GRID, seeds=2, workers=2, output=tmp_path / "local", charts=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        on_dask = dcsim.sweep(scenario, grid=GRID, seeds=2, dask=address, output=tmp_path / "dask", charts=False)
    assert on_dask.ran == 8
    pd.testing.assert_frame_equal(local.runs.drop(columns="wall_s"), on_dask.runs.drop(columns="wall_s"))
    pd.testing.assert_frame_equal(local.summary, on_dask.summary)
    local_csv = pd.read_csv(tmp_path / "local" / "sweep_runs.csv").drop(columns="wall_s")
    pd.testing.assert_frame_equal(local_csv, pd.read_csv(tmp_path / "dask" / "sweep_runs.csv").drop(columns="wall_s"))


def test_dask_local_starts_and_closes_its_own_cluster(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="dask extra not installed")
    scenario = write_scenario(tmp_path)
    grid = ["cluster.node_pools.0.count=5,6"]
    local = dcsim.sweep(scenario, grid=grid, workers=1)
    on_dask = dcsim.sweep(scenario, grid=grid, workers=1, dask="local")
    pd.testing.assert_frame_equal(local.runs.drop(columns="wall_s"), on_dask.runs.drop(columns="wall_s"))


def test_a_bad_dask_address_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="dask extra not installed")
    out = tmp_path / "out"  # an unreachable scheduler: tests/test_sweep_cli.py
    with pytest.raises(DcsimError, match="expected local or tcp://HOST:PORT"):
        dcsim.sweep(write_scenario(tmp_path), grid=["cluster.node_pools.0.count=5"], dask="somewhere", output=out)
    assert not out.exists()


def test_values_of_mixed_types_are_stored_as_text_and_numbers_stay_numbers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    mixed = dcsim.sweep(write_scenario(tmp_path), grid=["policies.scheduler.name=fifo,sjf", "energy.pue=1,1.5"],
                        output=out, charts=False)
    assert list(mixed.runs["energy.pue"]) == [1, 1.5, 1, 1.5]
    assert pd.read_parquet(out / "sweep_runs.parquet")["energy.pue"].tolist() == [1.0, 1.5, 1.0, 1.5]
    other = dcsim.sweep(write_scenario(tmp_path), grid=["horizon=360000,200h"], output=tmp_path / "o2",
                        charts=False)  # a number and a duration text: one column of text
    assert other.runs["horizon"].tolist() == ["360000", "200h"]
    assert pd.read_parquet(tmp_path / "o2" / "sweep_runs.parquet")["horizon"].tolist() == ["360000", "200h"]


def test_the_sweep_file_in_the_docs_is_valid_and_counts_as_it_says(tmp_path: Path) -> None:
    import re

    docs = (Path(__file__).resolve().parents[1] / "docs" / "sweeps.md").read_text()
    block = re.search(r"```yaml sweep-file\n(.*?)```", docs, flags=re.S)
    assert block is not None
    path = tmp_path / "sweep.yaml"
    path.write_text(block[1])
    spec = load_spec_file(path)
    spec.check()
    assert len(spec.points()) == 60 and spec.seeds == 3  # "3 x 2 x 2 x 5 = 60 points, 180 runs"
    base = dcsim.load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "quickstart.yaml")
    from dcsim.sweep.points import resolve_point

    resolve_point(base, spec.points()[-1])  # every key is a field of the quickstart scenario
