"""EASY backfilling on one pool, written from the definition, to check dcsim's policy against.

Deliberately simple and slow (lists, full rescans, no memo): a second, independent reading of EASY.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import pandas as pd


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def reference_easy(jobs: pd.DataFrame, capacity: int, speed: dict[str, float], startup: float,
                   split_speed: Callable[[str, int, int], float]) -> dict[int, float]:
    """EASY backfilling on one pool, written from the definition (Lifka 1995; Mu'alem & Feitelson 2001).

    A pass runs at each instant where a job arrived or ended (if any job waits): start jobs in
    arrival order while they fit; for the first that does not (the head), find the shadow time at
    which, by estimated ends of *all* running jobs (including those just started), enough
    accelerators are free, and the extra accelerators beyond its need then; later jobs may start
    if they fit now and either end (by estimate) before the shadow time or fit in the extra.
    Tie-breaks follow dcsim's documented ones: running jobs by (estimated end, job id).
    A job's true run time is startup + work / (speed x split_speed(model, accelerators, nodes)): a gang
    spread over more nodes than it needs runs slower (the documented calibrated synchronisation), which
    EASY's estimates do not know. Only the node count is read from dcsim's record (placement is not what
    this checks); the run time itself is not. Returns start time per job id.
    """
    arrivals = [row for row in records(jobs.sort_values("job_id")) if row["state"] != "rejected"]
    queue: list[dict[str, Any]] = []
    running: list[tuple[float, int, int, float]] = []  # (estimated end, id, demand, true end)
    free = capacity
    starts: dict[int, float] = {}

    def start(job: dict[str, Any], now: float) -> None:
        nonlocal free
        rate = speed[job["model"]]
        true_rate = rate * split_speed(job["model"], job["accelerators"], job["nodes"])
        # Ends grouped as dcsim groups them (estimate: now + run time estimate; true end: compute start +
        # work / rate): exact ties between jobs of equal speed then resolve the same way in both (float
        # addition is not associative).
        running.append((now + (startup + job["estimate_ref_s"] / rate), job["job_id"], job["accelerators"],
                        (now + startup) + job["work_ref_s"] / true_rate))
        free -= job["accelerators"]
        starts[job["job_id"]] = now
        queue.remove(job)

    while arrivals or running:
        now = min([r[3] for r in running] + ([arrivals[0]["submit_s"]] if arrivals else []))
        while arrivals and arrivals[0]["submit_s"] <= now:
            queue.append(arrivals.pop(0))
        for entry in [r for r in running if r[3] <= now]:
            running.remove(entry)
            free += entry[2]
        while queue and queue[0]["accelerators"] <= free:
            start(queue[0], now)
        if not queue:
            continue
        head = queue[0]
        available, shadow, extra = free, math.inf, 0
        enough_at = math.inf  # estimated end at which the head's accelerators are free
        for est_end, _, demand, _ in sorted(running):
            if max(est_end, now) > enough_at:
                break
            available += demand  # all jobs ending at that same time (or overdue) count towards the extra
            if enough_at == math.inf and available >= head["accelerators"]:
                enough_at = max(est_end, now)
        if enough_at < math.inf:
            shadow, extra = enough_at, available - head["accelerators"]
        for job in list(queue[1:]):
            if free == 0:
                break
            if job["accelerators"] > free:
                continue
            # A job holds its accelerators for start-up plus its estimated compute time.
            if now + (startup + job["estimate_ref_s"] / speed[job["model"]]) <= shadow:
                start(job, now)
            elif job["accelerators"] <= extra:
                extra -= job["accelerators"]
                start(job, now)
    return starts
