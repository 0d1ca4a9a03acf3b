"""What every training-workload source shares: model mix, estimates, constraints, the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dcsim.model import Job
from dcsim.scenario.schema import SyntheticTraining, TraceTraining

StreamFactory = Callable[[str], np.random.Generator]


@dataclass
class WorkloadReport:
    """How the job list was obtained; rows that could not be used are counted per reason."""

    source: str
    rows_read: int = 0
    jobs: int = 0  # records produced (jobs, or requests for an inference source)
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_lines: dict[str, list[int]] = field(default_factory=dict)
    unit: str = "jobs"  # the key `jobs` is reported under
    adjusted: dict[str, int] = field(default_factory=dict)  # records kept but changed, per reason (e.g. truncated)

    def skip(self, reason: str, lines: list[int]) -> None:
        if not lines:
            return
        self.skipped[reason] = self.skipped.get(reason, 0) + len(lines)
        self.skipped_lines.setdefault(reason, []).extend(lines[:10])

    def check_rows(self, frame: pd.DataFrame, checks: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Line numbers of `frame`'s rows (the header is line 1) and which rows pass: blank rows and
        rows failing a (reason, valid) check are counted, each under its first problem only."""
        lines = frame.index.to_numpy() + 2
        keep = ~(frame == "").all(axis=1).to_numpy()
        self.skip("blank line", lines[~keep].tolist())
        for reason, valid in checks:
            self.skip(reason, lines[keep & ~valid].tolist())
            keep &= valid
        return lines, keep

    def as_dict(self) -> dict[str, object]:
        report: dict[str, object] = {
            "source": self.source, "rows_read": self.rows_read, self.unit: self.jobs,
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_example_lines": {k: v[:10] for k, v in sorted(self.skipped_lines.items())}}
        if self.adjusted:
            report["adjusted"] = dict(sorted(self.adjusted.items()))
        return report


def draw_models(spec: SyntheticTraining | TraceTraining, count: int, streams: StreamFactory) -> list[str]:
    names = list(spec.models)
    weights = np.asarray([spec.models[name] for name in names], dtype=float)
    picks = streams("models").choice(len(names), size=count, p=weights / weights.sum())
    return [names[i] for i in picks]


def draw_estimates(spec: SyntheticTraining | TraceTraining, work: np.ndarray, streams: StreamFactory) -> np.ndarray:
    """User runtime estimates: work x U(1, 1 + estimate_error) (users over-estimate)."""
    if spec.estimate_error == 0:
        return work.copy()
    return work * streams("estimates").uniform(1.0, 1.0 + spec.estimate_error, size=len(work))


def draw_constraints(
    spec: SyntheticTraining | TraceTraining, count: int, streams: StreamFactory, canonical: Callable[[str], str]
) -> list[tuple[str, ...] | None]:
    if spec.constraint is None or spec.constraint.fraction == 0:
        return [None] * count
    rng = streams("constraints")
    pinned = rng.random(count) < spec.constraint.fraction
    choices = [canonical(name) for name in spec.constraint.accelerators]
    which = rng.integers(0, len(choices), size=count)
    return [(choices[w],) if p else None for p, w in zip(pinned, which, strict=True)]


def make_jobs(
    submit: np.ndarray, demand: np.ndarray, work: np.ndarray, models: list[str], estimates: np.ndarray,
    allowed: list[tuple[str, ...] | None], names: list[str] | None = None,
) -> list[Job]:
    """Assemble Job records with run-scoped ids 0..n-1 in submit order."""
    order = np.argsort(submit, kind="stable").tolist()
    # Python numbers from the arrays first (tolist: the same values as float() and int() of each element),
    # rather than indexing numpy arrays element by element for 80,000 jobs.
    submits, demands, works = np.asarray(submit, dtype=float).tolist(), np.asarray(demand).tolist(), \
        np.asarray(work, dtype=float).tolist()
    estimated = np.asarray(estimates, dtype=float).tolist()
    jobs = []
    for new_id, i in enumerate(order):
        jobs.append(Job(id=new_id, name=names[i] if names else f"job-{new_id}", submit=submits[i],
                        demand=int(demands[i]), model=models[i], work=works[i], estimate=estimated[i],
                        allowed=allowed[i]))
    return jobs


def apply_batch_sizes(spec: SyntheticTraining | TraceTraining, jobs: list[Job],
                      per_job: list[float | None] | None = None) -> None:
    """Each job's batch: its own (a trace column), else the scenario's for its model type, else None."""
    for i, job in enumerate(jobs):
        own = per_job[i] if per_job is not None else None
        job.batch_size = own if own is not None else spec.batch_size.get(job.model)
