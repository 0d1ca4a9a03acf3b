"""Failures against theory: checkpoint/restart waste, Young/Daly's optimum, Poisson failure counts.

One long job of demand 1 on a cluster of 16 one-accelerator V100 nodes (the reference, so speed 1):
only accelerators fail, exponentially with rate lambda (MTBF 10 h), and are repaired in a minute,
so a free accelerator is always there for the restart. The job checkpoints every tau of computing
(save C, blocking), a failure loses the work since the last completed checkpoint, the job notices
after D (detection) and restores in R (restart delay), and a failure during the restore starts it
over. A segment of s seconds (tau + C) then takes on average (Daly 2006, with D added)

    X(s) = (e^(lambda s) - 1) (1 / lambda + Y),  Y = e^(lambda R) D + (e^(lambda R) - 1) / lambda

(Y: from a failure to the end of a successful restore), so W = 49.5 tau takes 49 X(tau + C) + X(tau/2).
The mean over seeds is checked within 3 standard errors measured from those seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

import dcsim
from dcsim.engine.checkpoints import daly_interval
from dcsim.scenario import scenario_from_dict

HOUR = 3600.0
LAMBDA = 1 / (10 * HOUR)
TAU, SAVE, DETECT, RESTORE = 1 * HOUR, 300.0, 120.0, 600.0


def one_job_scenario(tmp_path: Path, work: float, interval: float | str, *, nodes: int = 16,
                     mtbf: float = 10 * HOUR, horizon: float | None = None) -> dict[str, Any]:
    path = tmp_path / "one.csv"
    path.write_text(f"submit,duration,accelerators\n0,{work!r},1\n")
    data: dict[str, Any] = {
        "name": "one-job", "cluster": {"node_pools": [{"name": "v", "count": nodes, "accelerator": "V100",
                                                       "accelerators_per_node": 1}]},
        "workload": {"training": {
            "source": "trace", "path": str(path),
            "checkpoint": {"policy": "young_daly", "save_time": SAVE} if interval == "young_daly"
            else {"interval": interval, "save_time": SAVE},
            "suspension": {"restart_delay": RESTORE}}},
        "failures": {"accelerator": {"mtbf": mtbf, "causes": {"fault": {"share": 1.0, "repair": 60.0}}},
                     "detection": DETECT},
        "policies": {"scheduler": "fifo", "placement": "pack"}}
    if horizon is not None:
        data["horizon"] = horizon
    return data


def expected_time(work: float, tau: float, detect: float = DETECT, restore: float = RESTORE) -> float:
    lam = LAMBDA
    after_failure = math.exp(lam * restore) * detect + (math.exp(lam * restore) - 1) / lam

    def segment(length: float) -> float:
        return (math.exp(lam * length) - 1) * (1 / lam + after_failure)

    full, rest = divmod(work, tau)
    return full * segment(tau + SAVE) + (segment(rest) if rest > 0 else 0.0)


def completion_times(tmp_path: Path, work: float, interval: float | str, seeds: range) -> np.ndarray:
    scenario = scenario_from_dict(one_job_scenario(tmp_path, work, interval))
    times = []
    for seed in seeds:
        jobs = dcsim.run(scenario, seed=seed).jobs
        assert jobs["state"].tolist() == ["completed"]
        times.append(float(jobs["end_s"].iloc[0]))
    return np.asarray(times)


def test_waste_matches_the_checkpoint_restart_model(tmp_path: Path) -> None:
    work = 49.5 * TAU
    times = completion_times(tmp_path, work, TAU, range(120))
    expected = expected_time(work, TAU)
    standard_error = times.std(ddof=1) / math.sqrt(len(times))
    assert abs(times.mean() - expected) < 3 * standard_error, (times.mean() / HOUR, expected / HOUR)
    # Leaving out detection and restore (about 5 failures x 12 min) is outside: the check can tell.
    assert abs(times.mean() - expected_time(work, TAU, detect=0.0, restore=0.0)) > 3 * standard_error


def test_young_daly_interval_minimises_simulated_waste(tmp_path: Path) -> None:
    optimum = daly_interval(SAVE, 1 / LAMBDA)
    assert optimum == pytest.approx(math.sqrt(2 * SAVE / LAMBDA) - SAVE, rel=0.03)  # close to Young's
    work = 40 * HOUR
    seeds = range(60)  # the same seeds (failure times) for every interval: common random numbers
    waste = {}
    for factor in (0.4, 1.0, 2.5):
        times = completion_times(tmp_path, work, optimum * factor, seeds)
        waste[factor] = float(times.mean() / work - 1)
    assert waste[1.0] < waste[0.4] and waste[1.0] < waste[2.5], waste
    # "young_daly" picks that interval for the job itself: its checkpoints number about W / tau_opt.
    scenario = scenario_from_dict(one_job_scenario(tmp_path, work, "young_daly"))
    jobs = dcsim.run(scenario, seed=1).jobs
    assert jobs["checkpoints"].iloc[0] >= math.floor(work / optimum) - 1


def test_failure_counts_are_poisson(tmp_path: Path) -> None:
    """64 accelerators, MTBF 1,000 h, 500 h: counts are Poisson with mean n t / MTBF = 32."""
    counts = []
    for seed in range(150):
        data = one_job_scenario(tmp_path, 1e9, TAU, nodes=64, mtbf=1000 * HOUR, horizon=500 * HOUR)
        data["failures"]["accelerator"]["causes"]["fault"]["repair"] = 1e-3
        result = dcsim.run(scenario_from_dict(data), seed=seed)
        counts.append(len(result.failures))
    values = np.asarray(counts, dtype=float)
    mean = 64 * 500 / 1000
    assert abs(values.mean() - mean) < 3 * math.sqrt(mean / len(values))
    dispersion = ((values - values.mean()) ** 2).sum() / values.mean()  # ~ chi-square(n - 1) if Poisson
    low, high = stats.chi2.ppf([0.001, 0.999], len(values) - 1)
    assert low < dispersion < high
