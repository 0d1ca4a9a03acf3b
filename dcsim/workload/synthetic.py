"""Synthetic training jobs: arrivals, gang sizes, work, model mix, each from its own named stream."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dcsim.model import Job
from dcsim.scenario.schema import Arrivals, Constant, Exponential, LogNormal, SyntheticTraining, Uniform
from dcsim.workload.common import (
    StreamFactory,
    WorkloadReport,
    apply_batch_sizes,
    draw_constraints,
    draw_estimates,
    draw_models,
    make_jobs,
)
from dcsim.workload.deferral import draw_deferral
from dcsim.workload.tenancy import draw_tenancy


def generate(
    spec: SyntheticTraining, streams: StreamFactory, canonical: Callable[[str], str]
) -> tuple[list[Job], WorkloadReport]:
    n = spec.jobs
    submit = np.cumsum(_interarrivals(spec.arrival, n, streams("arrivals")))
    sizes = np.asarray(spec.accelerators.values)
    weights = np.asarray(spec.accelerators.weights or [1.0] * len(sizes), dtype=float)
    demand = streams("sizes").choice(sizes, size=n, p=weights / weights.sum())
    if spec.steps is not None:
        work = np.full(n, spec.steps.count * spec.steps.step_time)
    else:
        assert spec.duration is not None
        work = _durations(spec.duration, n, streams("durations"))
    jobs = make_jobs(submit, demand, work, draw_models(spec, n, streams), draw_estimates(spec, work, streams),
                     draw_constraints(spec, n, streams, canonical))
    draw_tenancy(spec, jobs, streams)
    draw_deferral(spec, jobs, streams)
    apply_batch_sizes(spec, jobs)
    return jobs, WorkloadReport(source="synthetic", rows_read=n, jobs=n)


def _interarrivals(arrival: Arrivals, n: int, rng: np.random.Generator) -> np.ndarray:
    mean = 1.0 / arrival.rate
    if arrival.process == "constant":
        return np.full(n, mean)
    if arrival.process == "gamma":
        shape = 1.0 / arrival.cv**2
        return rng.gamma(shape, mean / shape, size=n)
    return rng.exponential(mean, size=n)


def _durations(dist: Constant | Exponential | LogNormal | Uniform, n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(dist, Constant):
        return np.full(n, dist.value)
    if isinstance(dist, Exponential):
        return rng.exponential(dist.mean, size=n)
    if isinstance(dist, LogNormal):
        return dist.median * np.exp(rng.normal(0.0, dist.sigma, size=n))
    return rng.uniform(dist.low, dist.high, size=n)
