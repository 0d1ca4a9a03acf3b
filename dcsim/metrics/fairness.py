"""Preemption, overhead and fairness figures of the `training` summary, from the jobs frame.

Definitions (README "Outputs", docs/scheduling.md):
- alone time of a job: what it took holding accelerators without sharing them: its computing time
  (attained accelerator-seconds / accelerators) plus its first start-up. Without preemption it is run_s.
- bounded slowdown: JCT / max(alone time, 10 s), the HPC convention that keeps very short jobs from
  dominating the mean.
- Jain's index of slowdowns (JCT / alone time) over completed jobs: (sum x)^2 / (n sum x^2), 1 when
  every job is slowed down alike, 1/n when one job takes all the slowdown.
- finish-time fairness (Themis, NSDI'20; Gavel, OSDI'20): rho = JCT / JCT on an equal share, where
  the equal share of a job is C / N accelerators, C the cluster's accelerators and N the time-average
  number of jobs in the system (submitted, not yet ended, not rejected; itself included) between its
  submit and its end. On that share a job of d accelerators runs at full speed if C / N >= d and
  time-sliced at (C / N) / d otherwise: JCT on the share = alone time x max(1, N d / C). rho > 1:
  the job did worse than on its equal share. Reported: mean, max, share of jobs with rho > 1.
- overhead accelerator-hours: accelerators x (suspend_s + restore_s), summed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dcsim.metrics.summary import stats

BOUND_S = 10.0


def alone_seconds(jobs: pd.DataFrame) -> pd.Series:
    startup = (jobs["compute_start_s"] - jobs["start_s"]).fillna(0.0)
    return jobs["attained_service_s"] / jobs["accelerators"] + startup


def jain(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    if values.size == 0 or not (values**2).sum() > 0:
        return None
    return float(values.sum() ** 2 / (values.size * (values**2).sum()))


def jobs_in_system(jobs: pd.DataFrame, end_time: float) -> np.ndarray:
    """Per job: the time-average number of jobs in the system from its submit to its end (or end_time)."""
    present = jobs[jobs["state"] != "rejected"]
    starts = present["submit_s"].to_numpy(dtype=float)
    ends = present["end_s"].fillna(end_time).to_numpy(dtype=float)
    times = np.concatenate([starts, ends])
    steps = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.argsort(times, kind="stable")
    times, count = times[order], np.cumsum(steps[order])
    area = np.concatenate([[0.0], np.cumsum(count[:-1] * np.diff(times))])  # integral of n(t) up to each time

    def integral(t: np.ndarray) -> np.ndarray:
        return np.interp(t, times, area)

    a = jobs["submit_s"].to_numpy(dtype=float)
    b = jobs["end_s"].fillna(end_time).to_numpy(dtype=float)
    span = b - a
    with np.errstate(invalid="ignore", divide="ignore"):
        average = (integral(b) - integral(a)) / span
    return np.where(span > 0, average, 1.0)


def lifecycle_section(jobs: pd.DataFrame, accelerators: int, end_time: float,
                      quotas: dict[str, int] | None = None) -> dict[str, Any]:
    """Keys added to `training` for runs under a preemptive scheduler (see the module docstring)."""
    completed = jobs["state"] == "completed"
    alone = alone_seconds(jobs)
    overhead = (jobs["accelerators"] * (jobs["suspend_s"] + jobs["restore_s"])).sum() / 3600
    section: dict[str, Any] = {
        "preemption": {
            "preemptions": int(jobs["preemptions"].sum()),
            "jobs_preempted": int((jobs["preemptions"] > 0).sum()),
            "migrations": int(jobs["migrations"].sum()),
            "overhead_accelerator_hours": float(overhead),
            "lost_work_ref_hours": float(jobs["lost_work_ref_s"].sum() / 3600),
            "queue_s": stats(jobs["queue_s"]),
        },
        "bounded_slowdown": stats((jobs["jct_s"] / np.maximum(alone, BOUND_S))[completed]),
    }
    done = jobs[completed]
    slowdown = (done["jct_s"] / alone[completed]).to_numpy(dtype=float)
    rho = np.array([])
    if len(done) and accelerators > 0:
        n = jobs_in_system(jobs, end_time)[completed.to_numpy()]
        demand = done["accelerators"].to_numpy(dtype=float)
        share = alone[completed].to_numpy(dtype=float) * np.maximum(1.0, n * demand / accelerators)
        rho = done["jct_s"].to_numpy(dtype=float) / share
    section["fairness"] = {
        "jain_slowdown": jain(slowdown),
        "finish_time_fairness": {
            "mean": float(rho.mean()) if rho.size else None,
            "max": float(rho.max()) if rho.size else None,
            "share_above_1": float((rho > 1 + 1e-9).mean()) if rho.size else None,
        },
    }
    tenants = sorted(set(jobs["tenant"]) - {""})
    if tenants:
        section["tenants"] = tenant_section(jobs, tenants, quotas or {}, end_time)
    return section


def tenant_section(jobs: pd.DataFrame, tenants: list[str], quotas: dict[str, int], end_time: float) -> dict[str, Any]:
    """Per tenant: jobs, attained accelerator-hours and their share of all, the mean accelerators computing
    over the run against its quota, waits and JCTs."""
    total = float(jobs["attained_service_s"].sum())
    out: dict[str, Any] = {}
    for tenant in tenants:
        own = jobs[jobs["tenant"] == tenant]
        attained = float(own["attained_service_s"].sum())
        out[tenant] = {
            "jobs": len(own), "jobs_completed": int((own["state"] == "completed").sum()),
            "attained_accelerator_hours": attained / 3600, "share_of_attained": attained / total if total else 0.0,
            "quota": quotas.get(tenant, 0),
            "mean_accelerators": attained / end_time if end_time > 0 else None,
            "share_of_quota": attained / end_time / quotas[tenant] if end_time > 0 and quotas.get(tenant) else None,
            "queue_s": stats(own["queue_s"]), "jct_s": stats(own.loc[own["state"] == "completed", "jct_s"]),
        }
    return out
