"""Capacity search (`dcsim size`): the smallest value of a monotone integer field that meets a target.

A value meets the target when the mean of the metric over the seeds does. From the scenario's own value
the search doubles upwards until a value meets the target (or --max is passed), then bisects between the
last value that missed and the first that met. Every value it ran is reported with its mean, 95% CI and
how many seeds met the target, and the answer's confidence is stated: whether the CIs at the answer and
one below it clear the target on their sides. Runs are stored like a sweep's, so a rerun resumes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dcsim.errors import DcsimError, ScenarioError
from dcsim.output_folders import check_output_folder, write_csv
from dcsim.runner import resolve
from dcsim.scenario import Scenario
from dcsim.stats import mean_ci
from dcsim.sweep.api import execute
from dcsim.sweep.backends import Backend, make_backend
from dcsim.sweep.points import Task, field_value, make_tasks, resolve_point, seed_list
from dcsim.sweep.store import FolderStore, MemoryStore, replace_file
from dcsim.sweep.targets import Target, parse_target

OnValue = Callable[[dict[str, Any]], None]  # called with each evaluated value's row


@dataclass
class SizeResult:
    scenario_name: str
    key: str
    target: Target
    seeds: list[int]
    answer: int | None  # None: no value up to the maximum meets the target
    values: pd.DataFrame  # one row per value run: value, runs, failed, mean, ci95, seeds_met, met
    runs: pd.DataFrame  # one row per run: value, seed, status, error, metric
    confidence: str
    warnings: list[str] = field(default_factory=list)
    folder: Path | None = None


class Search:
    """The runs of one capacity search: each value evaluated once over all seeds, runs stored."""

    def __init__(self, base: Scenario, key: str, target: Target, seeds: list[int], store: MemoryStore,
                 backend: Backend, on_value: OnValue | None) -> None:
        self.base, self.key, self.target, self.seeds = base, key, target, seeds
        self.store, self.backend, self.on_value = store, backend, on_value
        self.rows: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, list[Task]] = {}
        self.notes: list[str] = []

    def valid(self, value: int) -> bool:
        """Whether the scenario with `value` passes validation (e.g. the replicas fit the cluster)."""
        try:
            resolve_point(self.base, {self.key: value})
        except ScenarioError as exc:
            self.notes.append(f"{self.key}={value} is not a valid scenario: {exc.problems[0]}")
            return False
        return True

    def largest_valid(self, known_valid: int, high: int) -> int:
        """The largest value in [known_valid, high] that validates (validity assumed monotone); no runs."""
        lo, hi = known_valid, high
        while lo < hi:
            middle = (lo + hi + 1) // 2
            if self.valid(middle):
                lo = middle
            else:
                hi = middle - 1
        return lo

    def meets(self, value: int) -> bool:
        if value not in self.rows:
            _scenarios, tasks = make_tasks(self.base, [{self.key: value}], self.seeds)
            execute(tasks, self.store, backend=self.backend)
            self.tasks[value] = tasks
            self.rows[value] = self._row(value, tasks)
            if self.on_value:
                self.on_value(self.rows[value])
        return bool(self.rows[value]["met"])

    def _row(self, value: int, tasks: list[Task]) -> dict[str, Any]:
        records = [self.store.records[task.key] for task in tasks]
        values = np.array([_metric(record, self.target.metric) for record in records])
        mean, half, count = mean_ci(values)
        return {"value": value, "runs": count, "failed": sum(r.get("status") != "ok" for r in records),
                "mean": mean, "ci95": half, "seeds_met": int(sum(self.target.met(v) for v in values)),
                "seeds": len(values), "met": self.target.met(mean)}

    def runs_frame(self) -> pd.DataFrame:
        rows = []
        for value, tasks in sorted(self.tasks.items()):
            for task in tasks:
                record = self.store.records[task.key]
                rows.append({"value": value, "seed": task.seed, "status": record.get("status"),
                             "error": record.get("error"), "wall_s": record.get("wall_s"),
                             self.target.metric: _metric(record, self.target.metric), "key": task.key})
        return pd.DataFrame(rows)


def _metric(record: dict[str, Any], metric: str) -> float:
    value = (record.get("metrics") or {}).get(metric)
    return math.nan if value is None else float(value)


def search(run: Search, start: int, low: int, high: int) -> int | None:
    """The smallest value in [low, high] meeting the target, assuming more never hurts (monotone)."""
    if run.meets(start):
        lo, hi = low, start
    else:
        lo, value = start + 1, start
        while True:
            if value >= high:
                return None
            previous, value = value, min(high, max(value * 2, value + 1))
            if not run.valid(value):  # past what the scenario allows: search up to the largest valid value
                high = value = run.largest_valid(previous, value - 1)
                run.notes.append(f"searched up to {value}, the largest value the scenario allows")
                if value == previous:
                    return None
            if run.meets(value):
                hi = value
                break
            lo = value + 1
    while lo < hi:
        middle = (lo + hi) // 2
        if run.meets(middle):
            hi = middle
        else:
            lo = middle + 1
    return hi


def confidence(run: Search, answer: int | None, low: int) -> str:
    """How sure the answer is: the 95% CIs at the answer and one below it against the target."""
    target = run.target
    if answer is None:
        return "no value up to the maximum meets the target"
    at = run.rows[answer]
    parts = [f"at {answer}: {at['seeds_met']}/{at['seeds']} seeds meet the target"]
    sure = _clears(at, target, meets=True)
    if answer > low:
        below = run.rows.get(answer - 1)
        if below is None:
            run.meets(answer - 1)
            below = run.rows[answer - 1]
        parts.append(f"at {answer - 1}: {below['seeds_met']}/{below['seeds']}")
        sure = sure and _clears(below, target, meets=False)
    verdict = ("high: the 95% CIs at the answer and one below it lie on their sides of the target" if sure else
               "low: the target lies within a 95% CI next to the answer; more seeds would settle it")
    return f"{verdict} ({'; '.join(parts)})"


def _clears(row: dict[str, Any], target: Target, meets: bool) -> bool:
    half = row["ci95"]
    if half != half:  # one seed: no interval
        return False
    edge = row["mean"] - half if target.higher_is_better == meets else row["mean"] + half
    return target.met(edge) == meets


def size(
    scenario: Scenario | str | Path, vary: str, target: str, *, seeds: int = 3, low: int = 1,
    high: int | None = None, overrides: Iterable[str] = (), workers: int = 1, dask: str | None = None,
    output: str | Path | None = None, on_value: OnValue | None = None,
) -> SizeResult:
    """Find the smallest integer `vary` in [low, high] whose mean `target` metric over `seeds` meets it."""
    base = resolve(scenario, overrides)
    parsed = parse_target(target, base)
    current = field_value(base.model_dump(mode="json"), vary, base.source, "--vary")
    if isinstance(current, bool) or not isinstance(current, int):
        raise DcsimError(f"{base.source}: --vary {vary}: expected an integer field, got {current!r}")
    if low < 0:
        raise DcsimError(f"--min: expected an integer >= 0, got {low}")
    explicit_high = high is not None
    high = high if high is not None else max(64 * max(current, 1), low)
    if high < low:
        raise DcsimError(f"--max: expected a value >= --min ({low}), got {high}")
    seed_values = seed_list(base, seeds)
    # The ends given resolve, so the search cannot fail on a value part way; without --max, the search
    # stops below the first value the scenario does not allow (e.g. more replicas than the nodes hold).
    for value in (low, high) if explicit_high else (low,):
        resolve_point(base, {vary: value})
    folder = Path(output) if output is not None else None
    if folder is not None:
        check_output_folder(folder)
    backend = make_backend(workers, dask, len(seed_values))
    try:
        store = FolderStore(folder, "size", base.name) if folder is not None else MemoryStore()
        try:
            run = Search(base, vary, parsed, seed_values, store, backend, on_value)
            answer = search(run, min(max(current, low), high), low, high)
            sure = confidence(run, answer, low)
            values = pd.DataFrame([run.rows[value] for value in sorted(run.rows)])
            result = SizeResult(base.name, vary, parsed, seed_values, answer, values, run.runs_frame(), sure,
                                _monotone_warnings(values, answer) + run.notes[-2:], store.folder)
            if isinstance(store, FolderStore):
                _write(result, store)
        finally:
            store.close()
    finally:
        backend.close()
    return result


def _monotone_warnings(values: pd.DataFrame, answer: int | None) -> list[str]:
    """Evaluated values that contradict a monotone metric (a smaller value meeting, a larger missing)."""
    if answer is None:
        return []
    odd = values[((values["value"] < answer) & values["met"]) | ((values["value"] > answer) & ~values["met"])]
    return [f"{int(v)} {'meets' if met else 'misses'} the target, against monotonicity; the answer may be wrong"
            for v, met in zip(odd["value"], odd["met"], strict=True)]


def _write(result: SizeResult, store: FolderStore) -> None:
    import json

    report = {"scenario": result.scenario_name, "vary": result.key, "target": str(result.target),
              "seeds": result.seeds, "answer": result.answer, "confidence": result.confidence,
              "warnings": result.warnings}

    def write(folder: Path) -> None:
        replace_file(folder, "size_values.csv", lambda p: write_csv(result.values, p))
        replace_file(folder, "size_runs.csv", lambda p: write_csv(result.runs, p))
        replace_file(folder, "size.json", lambda p: p.write_text(json.dumps(report, indent=1) + "\n"))

    store.write_files(["size_values.csv", "size_runs.csv", "size.json"], write)
