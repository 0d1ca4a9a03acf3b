"""What a worker does with one Task: simulate it and return a small record (no frames travel back).

This function runs in local worker processes and on Dask workers alike, so both give the same record
for the same task. A failure of the run becomes a record with its error, so one bad point does not stop
the others.
"""

from __future__ import annotations

import math
import time
from typing import Any

from dcsim.sweep.points import Task

Record = dict[str, Any]


def run_task(task: Task) -> Record:
    """Simulate `task` and return {key, point, seed, status, error, wall_s, version, metrics}."""
    from dcsim.comparison import headline
    from dcsim.runner import run
    from dcsim.scenario import scenario_from_dict
    from dcsim.version import __version__

    started = time.perf_counter()
    record: Record = {"key": task.key, "point": task.point, "seed": task.seed, "version": __version__}
    try:
        scenario = scenario_from_dict(task.scenario, task.label, base_dir=task.base_dir)
        result = run(scenario, seed=task.seed)
        metrics: dict[str, float | None] = {"accelerators": float(total_accelerators(task.scenario))}
        metrics.update({name: None if math.isnan(value) else value
                        for name, value in headline(result.summary).items()})
        record.update(status="ok", error=None, metrics=metrics)
    except Exception as exc:  # recorded, not raised: the other points go on
        text = str(exc).splitlines()[0] if str(exc) else ""
        record.update(status="failed", error=f"{type(exc).__name__}: {text}"[:500], metrics={})
    record["wall_s"] = round(time.perf_counter() - started, 4)
    return record


def total_accelerators(scenario: dict[str, Any]) -> int:
    """Accelerators in the cluster: what a capacity question usually counts."""
    return sum(int(pool["count"]) * int(pool["accelerators_per_node"]) for pool in scenario["cluster"]["node_pools"])


def worker_version() -> str:
    """The dcsim version a (Dask) worker imports, checked before a sweep is sent to it."""
    from dcsim.version import __version__

    return __version__
