"""failures.csv and the `failures` section of summary.json (engine/failures.py).

ETTR (effective training time ratio) of a job: the accelerator-seconds of computing it kept (neither
thrown away by a failure nor stalled writing a checkpoint) over the accelerator-seconds from its
first start to its end (or the end of the run), queueing after interruptions included, as Meta
reports it for one job. The fleet figure sums both over jobs. Goodput: kept accelerator-seconds over
the fleet's. Availability: accelerator-seconds not under repair over the fleet's (a failed
component counts as down from its failure until it is back, a spare's swap included).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FAILURE_COLUMNS = ["time_s", "component", "node", "pool", "cause", "accelerators_down", "repair_s", "back_s",
                   "spare", "jobs_hit", "replicas_hit", "lost_accelerator_s"]
SIZE_BUCKETS = [(1, 1), (2, 8), (9, 64), (65, 512), (513, 4096), (4097, 1 << 40)]


def failures_frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=FAILURE_COLUMNS)
    types = {"time_s": "float64", "component": "str", "node": "str", "pool": "str", "cause": "str",
             "accelerators_down": "int64", "repair_s": "float64", "back_s": "float64", "spare": "bool",
             "jobs_hit": "str", "replicas_hit": "str", "lost_accelerator_s": "float64"}
    return frame.astype(types)


def kept_service(jobs: pd.DataFrame, stalled_checkpoints: bool) -> pd.Series:
    """Accelerator-seconds of computing each job kept."""
    kept = jobs["attained_service_s"] - jobs["lost_service_s"]
    if stalled_checkpoints:
        kept = kept - jobs["accelerators"] * jobs["checkpoint_s"]
    return kept.clip(lower=0.0)


def failure_summary(failures: pd.DataFrame, jobs: pd.DataFrame, capacity: int, end_time: float, *,
                    stalled_checkpoints: bool, serving: dict[str, int] | None) -> dict[str, Any]:
    started = jobs[jobs["start_s"].notna()]
    ends = started["end_s"].fillna(end_time)
    span = started["accelerators"] * (ends - started["start_s"])
    kept = kept_service(started, stalled_checkpoints)
    fleet_days = capacity * end_time / 86400
    held_days = float(span.sum()) / 86400
    down = (failures["accelerators_down"] * (failures["back_s"].clip(upper=end_time) - failures["time_s"])).sum()
    section: dict[str, Any] = {
        "failures": len(failures),
        "by_component": {str(k): int(v) for k, v in failures["component"].value_counts().sort_index().items()},
        "by_cause": {str(k): int(v) for k, v in failures["cause"].value_counts().sort_index().items()},
        "failures_per_1000_accelerator_days": 1000 * len(failures) / fleet_days if fleet_days > 0 else None,
        "job_interruptions": int(jobs["interruptions"].sum()),
        "interruptions_per_1000_accelerator_days": 1000 * float(jobs["interruptions"].sum()) / held_days
        if held_days > 0 else None,
        "ettr": float(kept.sum() / span.sum()) if span.sum() > 0 else None,
        "ettr_by_job_size": ettr_by_size(started, kept, span),
        "goodput": float(kept.sum() / (capacity * end_time)) if capacity * end_time > 0 else None,
        "lost_accelerator_hours": float(jobs["lost_service_s"].sum() / 3600),
        "lost_accelerator_hours_by_cause": {
            str(k): float(v / 3600) for k, v in failures.groupby("cause")["lost_accelerator_s"].sum().items() if v > 0},
        "checkpoint_accelerator_hours": float((jobs["accelerators"] * jobs["checkpoint_s"]).sum() / 3600),
        "checkpoints": int(jobs["checkpoints"].sum()),
        "accelerator_availability": float(1 - down / (capacity * end_time)) if capacity * end_time > 0 else None,
        "spares_used": int(failures["spare"].sum()),
    }
    if serving is not None:
        section["serving"] = serving
    return section


def ettr_by_size(started: pd.DataFrame, kept: pd.Series, span: pd.Series) -> dict[str, float]:
    """ETTR per job-size bucket (accelerators), for the buckets that have jobs."""
    result: dict[str, float] = {}
    sizes = started["accelerators"].to_numpy()
    for low, high in SIZE_BUCKETS:
        mask = (sizes >= low) & (sizes <= high)
        total = float(np.sum(span.to_numpy()[mask]))
        if total > 0:
            label = str(low) if low == high else f"{low}+" if high >= 1 << 40 else f"{low}-{high}"
            result[label] = float(np.sum(kept.to_numpy()[mask]) / total)
    return result
