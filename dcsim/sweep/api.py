"""dcsim.sweep(...): run every (point, seed) of a sweep that is not stored yet, then write its tables,
charts and page. Everything is checked (points, metrics, folder, Dask address) before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dcsim.errors import DcsimError
from dcsim.output_folders import check_output_folder, write_csv
from dcsim.runner import resolve
from dcsim.scenario import Scenario
from dcsim.sweep.backends import Backend, make_backend
from dcsim.sweep.points import Task, make_tasks, seed_list
from dcsim.sweep.spec import Point, SweepSpec, from_options, load_spec_file
from dcsim.sweep.store import FolderStore, MemoryStore, replace_file
from dcsim.sweep.tables import metric_columns, runs_frame, summary_frame
from dcsim.sweep.targets import metric_name

Progress = Callable[[int, int], None]  # (runs finished, runs to do) in this invocation


@dataclass
class SweepResult:
    scenario_name: str
    points: list[Point]
    seeds: list[int]
    runs: pd.DataFrame  # one row per (point, seed): parameters, seed, status, error, wall_s, key, metrics
    summary: pd.DataFrame  # one row per point: runs, failed, METRIC_mean and METRIC_ci95
    folder: Path | None = None
    ran: int = 0  # runs simulated by this call
    reused: int = 0  # runs found stored in the folder
    dropped_lines: int = 0  # unreadable lines of runs.jsonl (a write cut short by a kill)
    chart_failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return int((self.runs["status"] == "failed").sum()) if len(self.runs) else 0


@dataclass
class Prepared:
    """A sweep checked and ready to run: its points, seeds and tasks."""

    base: Scenario
    points: list[Point]
    seeds: list[int]
    tasks: list[Task]
    params: list[str]


def build_spec(spec: SweepSpec | str | Path | None, grid: Iterable[str], zipped: Iterable[str],
               ranges: Iterable[str], samples: int, sample_seed: int) -> SweepSpec:
    base = load_spec_file(Path(spec)) if isinstance(spec, str | Path) else spec
    return from_options(grid, zipped, ranges, samples, sample_seed, base)


def prepare(scenario: Scenario | str | Path, spec: SweepSpec, seeds: int | None,
            overrides: Iterable[str] = ()) -> Prepared:
    base = resolve(scenario, overrides)
    spec.check()
    points = spec.points()
    seed_values = seed_list(base, seeds if seeds is not None else (spec.seeds or 1))
    _scenarios, tasks = make_tasks(base, points, seed_values)
    return Prepared(base, points, seed_values, tasks, spec.keys)


def execute(tasks: Sequence[Task], store: MemoryStore, *, workers: int = 1, dask: str | None = None,
            backend: Backend | None = None, retry_failed: bool = False,
            progress: Progress | None = None) -> tuple[int, int]:
    """Run the tasks the store lacks (one run per distinct key); return (ran, reused).

    A `backend` given is used and left open (a capacity search sends several batches to one cluster);
    otherwise one is made from `workers` and `dask` for these tasks and closed after.
    """
    todo: dict[str, Task] = {}
    for task in tasks:
        stored = store.records.get(task.key)
        if stored is None or (retry_failed and stored.get("status") != "ok"):
            todo.setdefault(task.key, task)
    reused = len({t.key for t in tasks}) - len(todo)
    if not todo:
        return 0, reused
    own = backend is None
    runner = make_backend(workers, dask, len(todo)) if backend is None else backend
    finished = 0

    def on_record(record: dict[str, Any]) -> None:
        nonlocal finished
        store.append(record)
        finished += 1
        if progress:
            progress(finished, len(todo))

    if progress:
        progress(0, len(todo))
    try:
        runner.execute(list(todo.values()), on_record)
    finally:
        if own:
            runner.close()
    return finished, reused


def sweep(
    scenario: Scenario | str | Path, *, grid: Iterable[str] = (), zipped: Iterable[str] = (),
    ranges: Iterable[str] = (), samples: int = 0, sample_seed: int = 0, spec: SweepSpec | str | Path | None = None,
    seeds: int | None = None, overrides: Iterable[str] = (), workers: int = 1, dask: str | None = None,
    output: str | Path | None = None, metrics: Sequence[str] = (), pareto: Sequence[str] | None = None,
    charts: bool = True, retry_failed: bool = False, progress: Progress | None = None,
) -> SweepResult:
    """Run a sweep and return its tables; with `output`, store each run as it finishes and resume there.

    grid/zipped are "key=v1,v2" strings, ranges "key=LOW..HIGH" (with `samples`); `spec` a SweepSpec or a
    sweep YAML file. `dask` is "local" (a LocalCluster of `workers`) or "tcp://HOST:PORT".
    """
    prepared = prepare(scenario, build_spec(spec, grid, zipped, ranges, samples, sample_seed), seeds, overrides)
    chosen = [metric_name(m, prepared.base) for m in metrics]
    pareto_pair = _pareto_pair(pareto, prepared.base)
    folder = Path(output) if output is not None else None
    if folder is not None:
        check_output_folder(folder)  # before a Dask cluster starts or anything runs
    backend = make_backend(workers, dask, len(prepared.tasks)) if dask is not None else None  # reachable?
    try:
        store = FolderStore(folder, "sweep", prepared.base.name) if folder is not None else MemoryStore()
        try:
            ran, reused = execute(prepared.tasks, store, workers=workers, backend=backend,
                                  retry_failed=retry_failed, progress=progress)
            result = assemble(prepared, store, ran, reused)
            if isinstance(store, FolderStore):
                write_outputs(result, prepared, store, chosen, pareto_pair, charts)
        finally:
            store.close()
    finally:
        if backend is not None:
            backend.close()
    return result


def assemble(prepared: Prepared, store: MemoryStore, ran: int, reused: int) -> SweepResult:
    runs = runs_frame(prepared.points, prepared.tasks, store.records)
    summary = summary_frame(prepared.points, runs)
    return SweepResult(prepared.base.name, prepared.points, prepared.seeds, runs, summary, store.folder, ran, reused,
                       store.dropped_lines)


def _pareto_pair(pareto: Sequence[str] | None, base: Scenario) -> tuple[str, str] | None:
    if pareto is None:
        return None
    if len(pareto) != 2:
        raise DcsimError(f"--pareto: expected two metrics X,Y, got {len(pareto)}")
    return metric_name(pareto[0], base, "--pareto"), metric_name(pareto[1], base, "--pareto")


def default_metrics(runs: pd.DataFrame, limit: int = 4) -> list[str]:
    """The first metrics (in headline order) this sweep has, for its charts."""
    return [m for m in metric_columns(runs) if m != "accelerators"][:limit]


def default_pareto(runs: pd.DataFrame) -> tuple[str, str] | None:
    """Accelerators against the first latency this sweep has, when the accelerator count varies."""
    columns = metric_columns(runs)
    if "accelerators" not in columns or runs["accelerators"].nunique() < 2:
        return None
    latency = next((m for m in ("ttft_p99_s", "jct_mean_s", "e2e_p99_s") if m in columns), None)
    return ("accelerators", latency) if latency else None


def write_outputs(result: SweepResult, prepared: Prepared, store: FolderStore, metrics: Sequence[str],
                  pareto: tuple[str, str] | None, charts: bool) -> None:
    """sweep_runs.parquet/.csv, sweep_summary.csv, sweep.json, and (with charts) charts/ and sweep.html."""
    import json

    runs, summary = result.runs, result.summary
    tables = ["sweep_runs.parquet", "sweep_runs.csv", "sweep_summary.csv", "sweep.json"]
    description = {"scenario": prepared.base.source, "name": prepared.base.name, "parameters": prepared.params,
                   "points": len(prepared.points), "seeds": prepared.seeds, "runs": len(prepared.tasks),
                   "finished": int((runs["status"] == "ok").sum()), "failed": result.failed}

    def write_tables(folder: Path) -> None:
        replace_file(folder, "sweep_runs.parquet", lambda p: runs.to_parquet(p, index=False))
        replace_file(folder, "sweep_runs.csv", lambda p: write_csv(runs, p))
        replace_file(folder, "sweep_summary.csv", lambda p: write_csv(summary, p))
        replace_file(folder, "sweep.json", lambda p: p.write_text(json.dumps(description, indent=1) + "\n"))

    store.write_files(tables, write_tables)
    if not charts or runs.empty:
        return
    from dcsim.reporting.drawing import draw_each
    from dcsim.sweep.charts import chart_list
    from dcsim.sweep.page import sweep_page

    chosen = list(metrics) or default_metrics(runs)
    listed = chart_list(runs, prepared.params, chosen, pareto or default_pareto(runs))
    names = [name for name, _ in listed] + ["sweep.html"]

    def write_charts(folder: Path) -> None:
        (folder / "charts").mkdir(exist_ok=True)
        drawn = draw_each([("sweep charts", lambda: listed)], folder)
        result.chart_failures.extend(drawn.failures)
        notes = [f"{result.failed} runs failed; their errors are in sweep_runs.csv"] if result.failed else []
        facts = [("scenario", prepared.base.source), ("points", len(prepared.points)),
                 ("seeds", len(prepared.seeds)), ("runs", len(runs))]
        page = sweep_page(f"Sweep of {prepared.base.name}", facts, summary, prepared.params,
                          [m for m in metric_columns(runs)], list(drawn), notes)
        replace_file(folder, "sweep.html", lambda p: p.write_text(page))

    store.write_files(names, write_charts)
