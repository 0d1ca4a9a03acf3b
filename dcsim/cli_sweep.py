"""The `dcsim sweep` and `dcsim size` commands (registered by cli.py), kept apart to keep cli.py small.

Errors are DcsimError: cli.main prints them as one line and exits 2, before anything runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dcsim.errors import DcsimError

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

SetOption = Annotated[list[str] | None, typer.Option("--set", help="override a field: dotted.key=value (repeatable)")]
WorkersOption = Annotated[int | None, typer.Option(
    help="worker processes (default: the CPUs this process may use); with --dask local, the Dask workers")]
DaskOption = Annotated[str | None, typer.Option(
    "--dask", help="run on Dask: 'local' starts a LocalCluster, tcp://HOST:PORT uses a running scheduler")]


class RunProgress:
    """A bar of finished runs with an ETA, on a terminal only."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._progress: Progress | None = None
        self._task = TaskID(0)

    def __call__(self, done: int, total: int) -> None:
        if self._progress is None:
            if not console.is_terminal:
                return
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      console=console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=total)
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _workers(workers: int | None) -> int:
    if workers is None:
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count() or 1
    if workers < 1:
        raise DcsimError(f"--workers: expected a number >= 1, got {workers}")
    return workers


def sweep(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    grid: Annotated[list[str] | None, typer.Option("--grid", help="key=v1,v2,... (repeat: the product)")] = None,
    zipped: Annotated[list[str] | None, typer.Option("--zip", help="key=v1,v2,... advanced together")] = None,
    ranges: Annotated[list[str] | None, typer.Option("--random", help="key=LOW..HIGH sampled --samples times")] = None,
    samples: Annotated[int, typer.Option(help="random samples of the --random keys")] = 0,
    sample_seed: Annotated[int, typer.Option(help="seed of the random samples (not of the runs)")] = 0,
    spec: Annotated[Path | None, typer.Option("--spec", help="sweep YAML file (grid, zip, random, seeds)")] = None,
    seeds: Annotated[int | None, typer.Option(help="seeds per point, from the scenario seed up (default 1)")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="folder (default reports/NAME-sweep)")] = None,
    overrides: SetOption = None,
    workers: WorkersOption = None,
    dask: DaskOption = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="metric to chart (repeat)")] = None,
    pareto: Annotated[str | None, typer.Option(help="two metrics X,Y for the Pareto chart")] = None,
    charts: Annotated[bool, typer.Option(help="draw charts and sweep.html")] = True,
    retry_failed: Annotated[bool, typer.Option(help="rerun the runs stored as failed")] = False,
) -> None:
    """Run a scenario over a grid, zipped lists or random samples of its fields, times seeds; resumable."""
    import dcsim

    loaded = dcsim.load_scenario(scenario, overrides or [])
    folder = output or Path("reports") / f"{safe_name(loaded.name)}-sweep"
    progress = RunProgress(f"sweeping {scenario.name}")
    try:
        result = dcsim.sweep(loaded, grid=grid or [], zipped=zipped or [], ranges=ranges or [], samples=samples,
                             sample_seed=sample_seed, spec=spec, seeds=seeds, workers=_workers(workers), dask=dask,
                             output=folder, metrics=metric or [], charts=charts, retry_failed=retry_failed,
                             pareto=pareto.split(",") if pareto else None, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        console.print(f"interrupted: the runs finished so far are stored in {folder}; rerun the same command "
                      "to run the rest", markup=False, highlight=False)
        raise typer.Exit(130) from None
    finally:
        progress.close()
    for failure in result.chart_failures:
        console.print(f"warning: chart not drawn: {failure}", markup=False, highlight=False)
    if result.dropped_lines:
        console.print(f"warning: {result.dropped_lines} unreadable line(s) of runs.jsonl ignored "
                      "(a write cut short by a kill); those runs were run again", markup=False)
    _print_summary(result)
    out.print(f"{len(result.runs)} runs ({result.ran} run now, {result.reused} reused from the folder, "
              f"{result.failed} failed); sweep written to {result.folder}", markup=False, highlight=False)


def safe_name(name: str) -> str:
    """A folder name from a scenario name, as `dcsim run` makes it (cli.py imports this module, so the
    rule is repeated here rather than imported back)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")[:100] or "run"


def mean_ci_text(metric: str, mean: float, half: float) -> str:
    """"mean ± half"; metrics ending in _s as durations (ms below a second)."""
    from dcsim.units import format_duration

    def figure(value: float) -> str:
        if metric.endswith("_s"):
            return f"{value * 1e3:.3g} ms" if abs(value) < 0.9995 else format_duration(value)
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"

    if mean != mean:  # NaN
        return "-"
    return figure(mean) if half != half else f"{figure(mean)} ± {figure(half)}"


def _print_summary(result: object) -> None:
    from dcsim.sweep.api import SweepResult, default_metrics

    assert isinstance(result, SweepResult)
    params = list(result.points[0]) if result.points else []
    metrics = default_metrics(result.runs)
    table = Table(*params, "runs", *metrics, title=f"{result.scenario_name}: mean ± 95% CI over "
                  f"{len(result.seeds)} seeds (all metrics in sweep_summary.csv)")
    for _, row in result.summary.head(50).iterrows():
        cells = [str(row[p]) for p in params] + [f"{row['runs']}" + (f" ({row['failed']} failed)" if row["failed"]
                                                                     else "")]
        cells += [mean_ci_text(m, row[f"{m}_mean"], row[f"{m}_ci95"]) for m in metrics]
        table.add_row(*cells)
    out.print(table)
    if len(result.summary) > 50:
        out.print(f"... {len(result.summary) - 50} more points in sweep_summary.csv")


def size(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    vary: Annotated[str, typer.Option(help="integer field to size, e.g. cluster.node_pools.0.count")],
    target: Annotated[str, typer.Option(help='e.g. "slo_attainment >= 0.99" or "training.wait_s.mean <= 600"')],
    seeds: Annotated[int, typer.Option(help="seeds per value, from the scenario seed up")] = 3,
    low: Annotated[int, typer.Option("--min", help="smallest value to consider")] = 1,
    high: Annotated[int | None, typer.Option("--max", help="largest value (default 64 x the scenario's)")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="folder (default reports/NAME-size)")] = None,
    overrides: SetOption = None,
    workers: WorkersOption = None,
    dask: DaskOption = None,
) -> None:
    """Find the smallest value of an integer field meeting a target (mean over seeds), by bisection."""
    import dcsim
    from dcsim.sweep.sizing import size as run_size

    loaded = dcsim.load_scenario(scenario, overrides or [])
    folder = output or Path("reports") / f"{safe_name(loaded.name)}-size"

    def show(row: dict[str, object]) -> None:
        verdict = "meets" if row["met"] else "misses"
        mean, half = float(row["mean"]), float(row["ci95"])  # type: ignore[arg-type]
        figure = "-" if mean != mean else f"{mean:.4g}" + ("" if half != half else f" ± {half:.2g}")
        out.print(f"{vary}={row['value']}: mean {figure} ({row['seeds_met']}/{row['seeds']} seeds meet) -> "
                  f"{verdict}", markup=False, highlight=False)

    try:
        result = run_size(loaded, vary, target, seeds=seeds, low=low, high=high, workers=_workers(workers),
                          dask=dask, output=folder, on_value=show)
    except KeyboardInterrupt:
        console.print(f"interrupted: the runs finished so far are stored in {folder}; rerun the same command "
                      "to resume", markup=False, highlight=False)
        raise typer.Exit(130) from None
    for warning in result.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False)
    out.print(f"confidence: {result.confidence}", markup=False, highlight=False)
    out.print(f"results written to {result.folder}", markup=False, highlight=False)
    if result.answer is None:
        out.print(f"no {vary} up to {int(result.values['value'].max())} meets {result.target}", markup=False)
        raise typer.Exit(1)
    out.print(f"smallest {vary} meeting {result.target}: {result.answer}", markup=False, highlight=False)
