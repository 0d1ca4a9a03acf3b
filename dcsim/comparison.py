"""Compare policy variants on the same workloads (common random numbers) over several seeds.

Each variant is a comma-separated list of policy settings, e.g. "scheduler=easy_backfill" or
"scheduler=easy_backfill,scheduler.max_scan=200,placement=spread". For every seed, every variant
sees the identical job list, because workload streams depend only on the seed.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dcsim.errors import DcsimError, PolicyError
from dcsim.output_folders import write_atomically, write_csv
from dcsim.policies.registry import FAMILIES
from dcsim.results import RunResult
from dcsim.runner import resolve, run
from dcsim.scenario import Scenario, scenario_from_dict
from dcsim.scenario.loading import apply_overrides
from dcsim.stats import mean_ci
from dcsim.subsystems import headline_metrics

HEADLINE = headline_metrics()  # metric name -> its path in summary.json, subsystem by subsystem


def variant_overrides(variant: str) -> list[str]:
    """Turn "scheduler=sjf,placement.x=1" into scenario overrides under `policies.`."""
    names, params = [], []
    for part in filter(None, (p.strip() for p in variant.split(","))):
        key, sep, value = part.partition("=")
        family, _, param = key.partition(".")
        if not sep or family not in FAMILIES:
            raise PolicyError(f"--policy {variant!r}: expected FAMILY=NAME or FAMILY.PARAM=VALUE "
                              f"with FAMILY one of {', '.join(FAMILIES)}")
        if param:
            params.append(f"policies.{family}.params.{param}={value}")
        else:  # a new policy name starts from its own defaults
            names.extend([f"policies.{family}.name={value}", f"policies.{family}.params={{}}"])
    return names + params


def headline(summary: dict[str, Any]) -> dict[str, float]:
    row = {}
    for name, path in HEADLINE.items():
        value: Any = summary
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        row[name] = float(value) if value is not None else math.nan
    return row


@dataclass
class Comparison:
    scenario_name: str
    variants: list[str]
    seeds: list[int]
    table: pd.DataFrame  # one row per (variant, seed): headline metrics this scenario has
    jobs_by_variant: dict[str, pd.DataFrame]
    requests_by_variant: dict[str, pd.DataFrame] = field(default_factory=dict)
    chart_failures: list[str] = field(default_factory=list)  # charts save() could not draw (tables are kept)

    @property
    def metrics(self) -> list[str]:
        return [m for m in HEADLINE if m in self.table.columns]

    def summary_table(self) -> pd.DataFrame:
        """Per variant and metric: mean and 95% CI half-width over seeds, and the paired difference
        from the first variant (same seeds, same workloads) with its own 95% CI half-width.

        The paired interval is the one to read when asking "is B better than A": common random numbers
        remove the seed-to-seed variation that both variants share.
        """
        baseline = self.variants[0]
        rows = []
        for variant in self.variants:
            for metric in self.metrics:
                values = self._per_seed(variant, metric)
                mean, half, runs = mean_ci(values)
                diff_mean, diff_half, _ = mean_ci(values - self._per_seed(baseline, metric))
                rows.append({"variant": variant, "metric": metric, "mean": mean, "ci95": half, "runs": runs,
                             "diff_vs_first": diff_mean, "diff_ci95": diff_half})
        return pd.DataFrame(rows)

    def _per_seed(self, variant: str, metric: str) -> np.ndarray:
        """The metric for each seed, in seed order (every variant ran the same seeds)."""
        runs = self.table[self.table["variant"] == variant].sort_values("seed")
        return runs[metric].to_numpy(dtype=float)

    def save(self, folder: str | Path) -> Path:
        from dcsim.reporting import write_comparison_charts

        def write(tmp: Path) -> None:
            write_csv(self.table, tmp / "comparison_runs.csv")
            write_csv(self.summary_table(), tmp / "comparison_summary.csv")
            charts = write_comparison_charts(self.table, self.jobs_by_variant, tmp, self.requests_by_variant)
            self.chart_failures[:] = charts.failures

        marker = {"kind": "comparison", "name": self.scenario_name,
                  "variants": self.variants, "seeds": self.seeds}
        return write_atomically(Path(folder), write, marker)


def _one(args: tuple[Scenario, int]) -> RunResult:
    scenario, seed = args
    return run(scenario, seed=seed)


def usable_workers(requested: int, tasks: int) -> int:
    """Worker processes worth starting: no more than the tasks, nor than the CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(requested, tasks, cpus))


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when the process that started it ends, even by SIGKILL.

    Otherwise workers of a killed `dcsim compare` simulate on, or wait forever for the next task. Linux
    delivers SIGKILL at the parent's death (prctl PR_SET_PDEATHSIG); elsewhere a thread polls the parent
    pid. Ctrl-C is the parent's to handle: it stops the pool, so workers ignore SIGINT.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="dcsim-parent-watch", daemon=True).start()



def _run_all(tasks: list[tuple[Scenario, int]], workers: int,
             progress: Callable[[float], None] | None) -> list[RunResult]:
    """Run the tasks in order, in `workers` processes when that is more than one."""
    results: list[RunResult] = []
    if workers <= 1:
        for task in tasks:
            results.append(_one(task))
            if progress:
                progress(len(results) / len(tasks))
        return results
    # The workers must be this process's own children, whose parent _die_with_parent can name: fork on
    # Linux (as before; policies registered at run time stay visible to the workers; Python 3.14 would
    # default to a fork server), spawn elsewhere. The pool forks every worker at the first submit, before
    # the CLI's progress bar starts a thread.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_die_with_parent,
                               initargs=(os.getpid(),))
    try:
        for result in pool.map(_one, tasks):
            results.append(result)
            if progress:
                progress(len(results) / len(tasks))
    except BaseException:  # an error or Ctrl-C: stop now rather than finish every queued run
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def compare(
    scenario: Scenario | str | Path, variants: Sequence[str], seeds: int | Iterable[int] = 5, *,
    overrides: Iterable[str] = (), workers: int = 1, progress: Callable[[float], None] | None = None,
) -> Comparison:
    """Run every variant on every seed; same seed, same workload for all variants."""
    base = resolve(scenario, overrides)
    if isinstance(seeds, int) and not 1 <= seeds <= 10_000:
        raise DcsimError(f"seeds: expected a number of seeds from 1 to 10000, got {seeds}")
    seed_list = list(range(base.seed, base.seed + seeds)) if isinstance(seeds, int) else list(seeds)
    if not variants or not seed_list:
        raise DcsimError("compare needs at least one policy variant and one seed")
    duplicates = sorted({v for v in variants if list(variants).count(v) > 1})
    if duplicates:
        raise DcsimError(f"--policy {duplicates[0]!r} is given more than once; each variant must be distinct")
    normalized = base.model_dump(mode="json")
    scenarios = {}
    for variant in variants:
        data = apply_overrides(normalized, variant_overrides(variant))
        scenarios[variant] = scenario_from_dict(data, f"{base.source} [--policy {variant}]", base_dir=base.base_dir)
    tasks = [(scenarios[v], s) for v in variants for s in seed_list]
    results = _run_all(tasks, usable_workers(workers, len(tasks)), progress)
    rows: list[dict[str, Any]] = []
    jobs: dict[str, list[pd.DataFrame]] = {}
    requests: dict[str, list[pd.DataFrame]] = {}
    for (variant, seed), result in zip([(v, s) for v in variants for s in seed_list], results, strict=True):
        rows.append({"variant": variant, "seed": seed, **headline(result.summary)})
        jobs.setdefault(variant, []).append(result.jobs.assign(seed=seed))
        if result.requests is not None:
            requests.setdefault(variant, []).append(result.requests.assign(seed=seed))
    table = pd.DataFrame(rows)
    # Keep the metrics this scenario has: training ones without jobs, or inference ones without services, are n/a.
    table = table[[c for c in table.columns if c in ("variant", "seed") or table[c].notna().any()]]
    return Comparison(base.name, list(variants), seed_list, table,
                      {v: pd.concat(f, ignore_index=True) for v, f in jobs.items()},
                      {v: pd.concat(f, ignore_index=True) for v, f in requests.items()})
