"""Inference requests of one service: a synthetic generator or a CSV trace replay (Azure preset).

Synthetic draws come from named streams ("arrivals", "prompt_tokens", "output_tokens", "sessions"), so
changing one distribution never shifts the others (common random numbers across scenarios). Synthetic
arrivals are cumulative inter-arrival draws from t = 0: the first request arrives at its first gap (one
full gap 1/rate for `constant`), not at 0. Trace arrivals are shifted so the first request arrives at 0.
Everything is vectorised: a million requests take well under a second apart from the Request records.
"""

from __future__ import annotations

import numpy as np

from dcsim.model.requests import Request
from dcsim.scenario.inference import (
    ConstantTokens,
    ExponentialTokens,
    LogNormalTokens,
    RequestArrivals,
    SyntheticRequests,
    TokenDistribution,
    TraceRequests,
    UniformTokens,
)
from dcsim.workload.common import StreamFactory, WorkloadReport
from dcsim.workload.requests_trace import check_request_trace_header, read_request_trace_hashes

__all__ = ["build_requests", "check_request_trace_header"]

# Token counts above this are clipped (a lognormal tail with a large sigma would overflow int64).
_TOKEN_CEILING = 1e12


def build_requests(
    spec: SyntheticRequests | TraceRequests, service: int, base_dir: str, streams: StreamFactory
) -> tuple[list[Request], WorkloadReport]:
    """Requests of service `service` sorted by arrival (stable), ids 0..n-1; the caller renumbers across services."""
    hashes = None
    if isinstance(spec, TraceRequests):
        arrival, prompt, output, key, hashes, report = read_request_trace_hashes(spec, base_dir)
    else:
        arrival, prompt, output, key = _synthetic(spec, streams)
        report = WorkloadReport(source="synthetic", rows_read=spec.count)
    requests = make_requests(arrival, prompt, output, key, service)
    if hashes is not None:  # trace rows are already in arrival order (stable), as make_requests keeps them
        block = spec.hash_block_size if isinstance(spec, TraceRequests) else None
        for request, ids in zip(requests, hashes, strict=True):
            if ids is not None and len(ids):
                request.prefix = ids
                request.prefix_block = block or 0
    report.jobs = len(requests)
    report.unit = "requests"
    return requests, report


def make_requests(
    arrival: np.ndarray, prompt: np.ndarray, output: np.ndarray, key: np.ndarray, service: int
) -> list[Request]:
    """Request records in arrival order (stable for ties), ids 0..n-1 in that order."""
    order = np.argsort(arrival, kind="stable")
    rows = zip(arrival[order].tolist(), prompt[order].tolist(), output[order].tolist(), key[order].tolist(),
               strict=True)
    return [Request(id=i, service=service, arrival=a, prompt_tokens=p, output_tokens=o, key=k)
            for i, (a, p, o, k) in enumerate(rows)]


def _synthetic(
    spec: SyntheticRequests, streams: StreamFactory
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = spec.count
    arrival = arrival_times(spec.arrival, n, streams("arrivals"))
    prompt = draw_tokens(spec.prompt_tokens, n, streams("prompt_tokens"))
    output = draw_tokens(spec.output_tokens, n, streams("output_tokens"))
    if spec.sessions is None:
        key = np.arange(n, dtype=np.int64)  # every request its own session (arrivals are already sorted)
    else:
        key = streams("sessions").integers(0, spec.sessions, size=n, dtype=np.int64)
    return arrival, prompt, output, key


def arrival_times(arrival: RequestArrivals, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` non-decreasing arrival times in seconds from t = 0."""
    mean = 1.0 / arrival.rate
    if arrival.process == "diurnal":
        return _diurnal(arrival, n, rng)
    if arrival.process == "constant":
        return mean * np.arange(1, n + 1, dtype=float)
    if arrival.process == "gamma":
        shape = 1.0 / arrival.cv**2
        return np.cumsum(rng.gamma(shape, mean / shape, size=n))
    return np.cumsum(rng.exponential(mean, size=n))


def diurnal_rate(arrival: RequestArrivals, t: np.ndarray) -> np.ndarray:
    """rate(t) = rate x (1 + amplitude x cos(2 pi (t - peak) / period)): highest at `peak` in each cycle."""
    return arrival.rate * (1.0 + arrival.amplitude * np.cos(2.0 * np.pi * (t - arrival.peak) / arrival.period))


def _diurnal(arrival: RequestArrivals, n: int, rng: np.random.Generator) -> np.ndarray:
    """Non-homogeneous Poisson arrivals by thinning, in vectorised blocks until `n` are accepted.

    Candidates come at the peak rate rate x (1 + amplitude); one at time t is kept with probability
    rate(t) / peak rate. Block sizes depend only on how many are still missing, so a seed gives one answer.
    """
    peak_rate = arrival.rate * (1.0 + arrival.amplitude)
    kept: list[np.ndarray] = []
    found = 0
    last = 0.0
    while found < n:
        missing = n - found
        size = int(missing * (1.0 + arrival.amplitude) * 1.1) + 64  # mean acceptance is 1 / (1 + amplitude)
        candidates = last + np.cumsum(rng.exponential(1.0 / peak_rate, size=size))
        accept = rng.random(size) * peak_rate < diurnal_rate(arrival, candidates)
        chosen = candidates[accept][:missing]
        kept.append(chosen)
        found += len(chosen)
        last = float(candidates[-1])
    return np.concatenate(kept) if kept else np.empty(0)


def draw_tokens(dist: TokenDistribution, n: int, rng: np.random.Generator) -> np.ndarray:
    """Token counts as int64, each at least 1 and at most the distribution's `max` when it has one."""
    if isinstance(dist, ConstantTokens):
        return np.full(n, dist.value, dtype=np.int64)
    if isinstance(dist, UniformTokens):
        return rng.integers(dist.low, dist.high, size=n, endpoint=True, dtype=np.int64)
    if isinstance(dist, LogNormalTokens):
        values = np.rint(dist.median * np.exp(rng.normal(0.0, dist.sigma, size=n)))
    else:
        assert isinstance(dist, ExponentialTokens)
        values = np.ceil(rng.exponential(dist.mean, size=n))
    upper = _TOKEN_CEILING if dist.max is None else float(dist.max)
    return np.clip(values, 1.0, upper).astype(np.int64)
