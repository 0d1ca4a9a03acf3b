"""The `dcsim` command: run, validate, schema, compare, sweep, size, policies, calibration.

User mistakes (DcsimError) print one line per problem and exit 2; --debug shows the traceback.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from dcsim.cli_calibration import calibration_app
from dcsim.cli_sweep import size as size_command
from dcsim.cli_sweep import sweep as sweep_command
from dcsim.errors import DcsimError, ScenarioError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate AI data-center clusters.")
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
_debug = {"on": False}

app.add_typer(calibration_app, name="calibration")

SetOption = Annotated[list[str] | None, typer.Option("--set", help="override a field: dotted.key=value (repeatable)")]


def _print_version(value: bool) -> None:
    if value:
        from dcsim import __version__

        out.print(f"dcsim {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    _debug["on"] = debug


class LazyProgress:
    """A progress bar that appears only once a task has taken more than `delay` seconds."""

    def __init__(self, label: str, delay: float = 1.0) -> None:
        self.label = label
        self.delay = delay
        self.started = time.perf_counter()
        self._progress: Progress | None = None
        self._task = TaskID(0)

    def __call__(self, fraction: float) -> None:
        if self._progress is None:
            if time.perf_counter() - self.started < self.delay or not console.is_terminal:
                return
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                      TimeElapsedColumn(), console=console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=1.0)
        self._progress.update(self._task, completed=min(fraction, 1.0))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="results folder (default reports/NAME)")] = None,
    overrides: SetOption = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario seed")] = None,
    charts: Annotated[bool, typer.Option(help="write PNG charts and report.html")] = True,
) -> None:
    """Simulate a scenario and write summary.json, CSV frames, charts and report.html."""
    import dcsim
    from dcsim.output_folders import check_output_folder

    if seed is not None and seed < 0:
        raise DcsimError(f"--seed: expected an integer >= 0, got {seed}")
    loaded = dcsim.load_scenario(scenario, overrides or [])
    folder = check_output_folder(output or Path("reports") / _safe_name(loaded.name))  # fail before simulating
    progress = LazyProgress(f"simulating {scenario.name}")
    try:
        result = dcsim.run(loaded, seed=seed, progress=progress)
    finally:
        progress.close()
    failures: list[str] = []

    def report(tmp: Path) -> None:
        from dcsim.reporting import write_report  # matplotlib loads only for runs that draw charts

        failures.extend(write_report(result, tmp).failures)

    written = result.save(folder, extra_files=report if charts else None)
    _print_run_summary(result.summary)
    for failure in failures:  # the frames and summary are written all the same
        console.print(f"warning: chart not drawn: {failure}", markup=False, highlight=False)
    out.print(f"results written to {written}")


@app.command()
def validate(
    scenarios: Annotated[list[Path], typer.Argument(help="scenario YAML files")],
    overrides: SetOption = None,
) -> None:
    """Check scenario files; report every problem with file, field, expected and actual value."""
    from dcsim.build.policies import policy_problems
    from dcsim.build.serving import service_problems
    from dcsim.scenario import load_scenario
    from dcsim.scenario.schema import TraceTraining
    from dcsim.workload.requests_trace import request_trace_problems
    from dcsim.workload.trace import check_trace_header

    failed = False
    for path in scenarios:
        try:
            scenario = load_scenario(path, overrides or [])
            training = scenario.workload.training
            problems = policy_problems(scenario)
            if isinstance(training, TraceTraining):
                problems += [f"{path}: {problem}" for problem in check_trace_header(training, scenario.base_dir)]
            problems += [f"{path}: {problem}" for problem in request_trace_problems(scenario)]
            problems += service_problems(scenario)
            if scenario.energy.uses_series:  # read every series once, as a run would (dcsim/energy/)
                from dcsim.energy.loading import energy_inputs

                energy_inputs(scenario.energy, scenario.base_dir, scenario.horizon)
            if problems:
                raise ScenarioError(problems)
            if scenario.policies.power.name != "none":
                from dcsim.build.model import build_model

                build_model(scenario)  # a power policy's checks need the cluster (idle power, failures)
        except DcsimError as exc:
            failed = True
            for line in str(exc).splitlines():  # the same form as every other command's errors
                console.print(f"error: {line}", markup=False, highlight=False)
            continue
        accelerators = sum(p.count * p.accelerators_per_node for p in scenario.cluster.node_pools)
        out.print(f"{path}: ok ({len(scenario.cluster.node_pools)} node pools, {accelerators} accelerators)",
                  markup=False)
    if failed:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor autocompletion)."""
    from dcsim.scenario.schema import Scenario

    print(json.dumps(Scenario.model_json_schema(), indent=2))


@app.command()
def policies() -> None:
    """List registered policies by family, with their parameters and defaults."""
    from dcsim.policies import describe
    from dcsim.policies.registry import FAMILIES

    # Names and parameters are what users type: each kept whole on one line, the table made wider than a
    # narrow terminal rather than cut them; descriptions wrap. One table per family leaves them the room.
    for family in FAMILIES:
        table = Table(title=f"{family} policies", title_justify="left")
        table.add_column("name", no_wrap=True)
        table.add_column("parameters", no_wrap=True)
        table.add_column("description", ratio=1, overflow="fold")
        rows = [(name, [f"{k}={v!r}" for k, v in params.items()] or ["-"], doc)
                for name, doc, params in describe(family)]
        for name, params, doc in rows:
            table.add_row(name, "\n".join(params), doc)
        needed = max(len(name) for name, _, _ in rows) + max(len(p) for _, ps, _ in rows for p in ps) + 30
        Console(width=max(out.width, needed), soft_wrap=True).print(table)  # out.print cannot go wider


@app.command()
def compare(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    policy: Annotated[list[str], typer.Option("--policy", help="a variant, e.g. scheduler=easy_backfill (repeat)")],
    seeds: Annotated[int, typer.Option(help="number of seeds (from the scenario seed upwards)")] = 5,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="folder (default reports/NAME-compare)")] = None,
    overrides: SetOption = None,
    workers: Annotated[int, typer.Option(help="parallel worker processes")] = 1,
) -> None:
    """Run policy variants on identical workloads over several seeds; table with 95% CIs, charts, CSV."""
    import dcsim
    from dcsim.output_folders import check_output_folder

    if not 1 <= seeds <= 10_000:
        raise DcsimError(f"--seeds: expected a number from 1 to 10000, got {seeds}")
    if workers < 1:
        raise DcsimError(f"--workers: expected a number >= 1, got {workers}")
    loaded = dcsim.load_scenario(scenario, overrides or [])
    folder = check_output_folder(output or Path("reports") / f"{_safe_name(loaded.name)}-compare")
    progress = LazyProgress(f"comparing {len(policy)} variants x {seeds} seeds")
    try:
        comparison = dcsim.compare(loaded, policy, seeds, workers=workers, progress=progress)
    finally:
        progress.close()
    written = comparison.save(folder)
    for failure in comparison.chart_failures:  # the CSVs are written all the same
        console.print(f"warning: chart not drawn: {failure}", markup=False, highlight=False)
    summary = comparison.summary_table().set_index(["metric", "variant"])
    baseline = comparison.variants[0]
    table = Table("metric", *comparison.variants, title=f"{comparison.scenario_name}: mean ± 95% CI over "
                  f"{len(comparison.seeds)} seeds; Δ = paired difference from {baseline}")
    for metric in summary.index.get_level_values("metric").unique():
        cells = []
        for variant in comparison.variants:
            row = summary.loc[(metric, variant)]
            text = _mean_ci(metric, row["mean"], row["ci95"])
            if variant != baseline:
                text += f"\nΔ {_mean_ci(metric, row['diff_vs_first'], row['diff_ci95'])}"
            cells.append(text)
        table.add_row(metric, *cells)
    out.print(table)
    out.print(f"comparison written to {written}")


app.command("sweep")(sweep_command)
app.command("size")(size_command)


def _mean_ci(metric: str, mean: float, half: float) -> str:
    """"mean ± half" in the metric's unit: metrics ending in _s are durations ("2.1 h ± 14.0 min")."""
    if mean != mean:  # NaN
        return "-"
    figure = _latency if metric.endswith("_s") else _number
    return figure(mean) if half != half else f"{figure(mean)} ± {figure(half)}"


def _number(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _safe_name(name: str) -> str:
    """A folder name from a scenario name: no path separators, no leading dots ("." or ".."), and short
    enough for any file system (names past 255 bytes cannot be created; the scenario name stays in
    summary.json)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")[:100] or "run"


def _print_run_summary(summary: dict[str, object]) -> None:
    from dcsim.units import format_duration

    table = Table("metric", "value", title=f"{summary['scenario']} (seed {summary['seed']})")
    table.add_row("simulated time", format_duration(float(summary["sim_time_s"])))  # type: ignore[arg-type]
    table.add_row("wall time", f"{summary['wall_time_s']:.2f} s")
    training = summary.get("training")
    if isinstance(training, dict):
        table.add_row("jobs completed / submitted",
                      f"{training['jobs_completed']} / {training['jobs_submitted']} "
                      f"({training.get('jobs_unfinished', 0)} unfinished, {training.get('jobs_rejected', 0)} "
                      f"rejected, {training.get('jobs_failed', 0)} failed)")
        for key in ("wait_s", "jct_s"):
            stat = training[key]
            if stat["mean"] is not None:
                table.add_row(f"{key[:-2]} mean / p95",
                              f"{format_duration(stat['mean'])} / {format_duration(stat['p95'])}")
    inference = summary.get("inference")
    if isinstance(inference, dict):
        _inference_rows(table, inference)
    failures = summary.get("failures")
    if isinstance(failures, dict):
        ettr = failures.get("ettr")
        table.add_row("failures / job interruptions",
                      f"{failures['failures']} / {failures['job_interruptions']} (ETTR "
                      f"{'n/a' if ettr is None else f'{ettr:.1%}'}, {failures['lost_accelerator_hours']:,.0f} "
                      "accelerator-hours lost)")
    utilization = summary["utilization"]
    assert isinstance(utilization, dict)
    table.add_row("utilization busy / allocated",
                  f"{utilization['busy']['all']:.1%} / {utilization['allocated']['all']:.1%}")
    energy = summary["energy"]
    assert isinstance(energy, dict)
    table.add_row("facility energy", f"{energy['facility_kwh']:,.1f} kWh ({energy['carbon_kg']:,.0f} kg CO2)")
    workload = summary.get("workload")
    if isinstance(workload, dict) and workload.get("skipped"):
        skipped = ", ".join(f"{n} {reason}" for reason, n in workload["skipped"].items())
        table.add_row("trace rows skipped", skipped)
    out.print(table)


def _latency(seconds: float) -> str:
    from dcsim.units import format_duration

    # under a second in ms (3 figures; 0.9995 s and up would print "1e+03 ms")
    return f"{seconds * 1e3:.3g} ms" if abs(seconds) < 0.9995 else format_duration(seconds)


def _inference_rows(table: Table, inference: dict[str, Any]) -> None:
    table.add_row("requests completed / arrived",
                  f"{inference['completed']} / {inference['requests']} ({inference['dropped']} rejected, "
                  f"{inference['unfinished']} unfinished)")
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "end-to-end")):
        stat = inference[key]
        if stat["p50"] is not None:
            table.add_row(f"{label} p50 / p99", f"{_latency(stat['p50'])} / {_latency(stat['p99'])}")
    if inference.get("slo_attainment") is not None:
        table.add_row("SLO attainment", f"{inference['slo_attainment']:.1%}")
    per_token = inference.get("energy_per_output_token_j")
    table.add_row("output tokens/s", f"{inference['tokens_per_s']:,.0f}"
                  + (f" ({per_token:.3g} J per token)" if per_token is not None else ""))
    if inference.get("preemptions"):
        table.add_row("preemptions (recomputed)", f"{inference['preemptions']:,}")


def main() -> None:
    """Console-script entry point: map user errors to one line per problem and exit code 2."""
    try:
        app()  # standalone: typer itself reports usage errors with exit code 2
    except DcsimError as exc:
        if _debug["on"]:
            raise
        for line in str(exc).splitlines() or [type(exc).__name__]:
            console.print(f"error: {line}", markup=False, highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
