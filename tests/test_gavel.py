"""gavel: the linear program on hand-solvable cases, and whole runs on a heterogeneous cluster."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import dcsim
from dcsim.errors import DcsimError
from dcsim.policies import build
from dcsim.scenario import scenario_from_dict


def shares(objective: str, speed: list[list[float]], demand: list[int], capacity: dict[str, int]) -> np.ndarray:
    policy = build("scheduler", "gavel", {"objective": objective})
    jobs: Any = [SimpleNamespace(demand=d) for d in demand]
    return policy.allocation(None, jobs, sorted(capacity), np.array(speed), capacity)


def test_max_min_fairness_splits_the_fast_model_evenly() -> None:
    # Two jobs, one fast accelerator (speed 1) and one slow (0.25). Max-min of normalised rates gives each
    # half of each: rate 0.5 + 0.25 x 0.5 = 0.625 for both (any other split lowers one of them).
    x = shares("max_min_fairness", [[1.0, 0.25], [1.0, 0.25]], [1, 1], {"a-fast": 1, "b-slow": 1})
    rates = x @ np.array([1.0, 0.25])
    assert rates == pytest.approx([0.625, 0.625], abs=1e-7)


def test_max_min_fairness_gives_the_slow_model_to_the_job_it_slows_least() -> None:
    # Job 0 loses nothing on the second model (speeds 1, 1); job 1 runs 4x slower there (1, 0.25). Job 0
    # entirely on the second model and job 1 entirely on the first give both their best rate (normalised 1),
    # which no allocation can beat: that is the max-min optimum (heterogeneity-aware, unlike an even split).
    x = shares("max_min_fairness", [[1.0, 1.0], [1.0, 0.25]], [1, 1], {"a-fast": 1, "b-slow": 1})
    normalised = (x * np.array([[1.0, 1.0], [1.0, 0.25]])).sum(axis=1)
    assert normalised == pytest.approx([1.0, 1.0], abs=1e-7)


def test_max_sum_throughput_uses_every_accelerator_and_respects_demand() -> None:
    x = shares("max_sum_throughput", [[1.0, 0.5], [1.0, 0.5], [1.0, 0.5]], [2, 1, 1], {"a-fast": 2, "b-slow": 2})
    demand = np.array([2, 1, 1])
    used = (x * demand[:, None]).sum(axis=0)
    assert (used <= np.array([2, 2]) + 1e-9).all() and used.sum() == pytest.approx(4.0)
    assert (x.sum(axis=1) <= 1 + 1e-9).all()


def hetero(objective: str, jobs: int = 40) -> dcsim.RunResult:
    data = {"name": "het", "seed": 2, "cluster": {"node_pools": [
        {"name": n, "count": 2, "accelerator": a, "accelerators_per_node": 4}
        for n, a in (("v", "V100"), ("p", "P100"), ("k", "K80"))]},
        "workload": {"training": {"source": "synthetic", "jobs": jobs, "arrival": {"process": "poisson", "rate": "6/h"},
                                  "accelerators": {"values": [1, 2, 4], "weights": [4, 2, 1]},
                                  "duration": {"distribution": "lognormal", "median": "1h", "sigma": 1.0},
                                  "models": {"ResNet-50": 1, "LM": 1}}},
        "policies": {"scheduler": {"name": "gavel", "params": {"objective": objective, "round": 360.0}},
                     "placement": "pack"}}
    return dcsim.run(scenario_from_dict(data))


@pytest.mark.parametrize("objective", ["max_min_fairness", "finish_time_fairness", "max_sum_throughput"])
def test_gavel_runs_complete_deterministically_and_migrate(objective: str) -> None:
    first, second = hetero(objective), hetero(objective)
    training = first.summary["training"]
    assert training["jobs_completed"] == 40
    assert first.jobs.equals(second.jobs)
    assert training["preemption"]["migrations"] > 0  # time shares on several models mean moving jobs
    segments = first.job_segments
    assert segments is not None
    # Allocation changes only at round boundaries (multiples of 360 s): every preemption starts there.
    suspended = segments[segments["phase"] == "computing"].merge(
        first.jobs[["job_id", "end_s"]], on="job_id")
    cut = suspended[suspended["end_s_x"] < suspended["end_s_y"]]["end_s_x"].to_numpy()
    assert len(cut) and np.allclose(cut / 360.0, np.round(cut / 360.0))


def test_gavel_needs_a_round_and_a_known_objective() -> None:
    with pytest.raises(DcsimError, match=r"round must be a finite number of seconds > 0 \(Gavel decides in rounds\)"):
        build("scheduler", "gavel", {"round": 0.0})
    with pytest.raises(DcsimError, match="objective must be one of max_min_fairness, finish_time_fairness"):
        build("scheduler", "gavel", {"objective": "fastest"})
