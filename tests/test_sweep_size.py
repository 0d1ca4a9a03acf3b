"""Capacity search against theory: on an M/M/c queue (Poisson arrivals, exponential work, one accelerator
per job and per node, FIFO), the smallest c meeting a mean-wait target is the one Erlang C gives, and the
same a brute-force grid finds."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

import dcsim
from dcsim.errors import DcsimError
from dcsim.sweep import size
from tests.test_sweep import MMC, write_scenario

MU = 1 / 3600.0  # exponential work, mean 1 h
LAM = 4 * MU  # offered load a = 4 accelerators
SEEDS = 3
JOBS = 2000  # a run takes about half a second; one seed's mean wait is within ~20% of Wq here


def erlang_c_wait(c: int, lam: float, mu: float) -> float:
    """Mean wait in queue of M/M/c: C(c, a) / (c mu - lambda), with C the Erlang C probability of waiting."""
    a = lam / mu
    if c <= a:
        return math.inf
    terms = sum(a**k / math.factorial(k) for k in range(c))
    last = a**c / math.factorial(c) * c / (c - a)
    return last / (terms + last) / (c * mu - lam)


# Erlang C: Wq(5) = 1995 s, Wq(6) = 513 s, Wq(7) = 162 s, Wq(8) = 53 s. A target between Wq(6) and Wq(7),
# 288 s (their geometric mean), is 1.8x from each, far beyond the seed noise: the answer must be 7.
TARGET_S = math.sqrt(erlang_c_wait(6, LAM, MU) * erlang_c_wait(7, LAM, MU))


def test_target_sits_between_two_erlang_c_values() -> None:
    assert erlang_c_wait(1, 0.7, 1.0) == pytest.approx(0.7 / 0.3)  # M/M/1: rho / (mu - lambda)
    waits = {c: erlang_c_wait(c, LAM, MU) for c in range(4, 10)}
    expected = min(c for c, wait in waits.items() if wait <= TARGET_S)
    assert expected == 7 and waits[6] / TARGET_S > 1.7 and TARGET_S / waits[7] > 1.7


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = {**MMC, "workload": {"training": {**MMC["workload"]["training"], "jobs": JOBS, "arrival":
                                             {"process": "poisson", "rate": LAM}}}}
    return write_scenario(tmp_path_factory.mktemp("mmc"), data)


def test_size_finds_the_erlang_c_answer_and_the_brute_force_one(scenario: Path, tmp_path: Path) -> None:
    target = f"training.wait_s.mean <= {TARGET_S}"
    seen: list[int] = []
    result = size(scenario, "cluster.node_pools.0.count", target, seeds=SEEDS, workers=2, output=tmp_path / "size",
                  on_value=lambda row: seen.append(int(row["value"])))
    assert result.answer == 7
    assert seen == [4, 8, 6, 7]  # from the scenario's 4: doubled to 8, then bisected
    assert result.confidence.startswith("high") and "at 7: 3/3" in result.confidence
    assert result.warnings == []
    values = result.values.set_index("value")
    assert list(values["met"]) == [False, False, True, True]
    assert len(result.runs) == 4 * SEEDS and set(result.runs["seed"]) == {1, 2, 3}

    # Brute force: every c from 5 to 9 with the same seeds; the smallest whose mean wait meets the target.
    grid = dcsim.sweep(scenario, grid=["cluster.node_pools.0.count=5,6,7,8,9"], seeds=SEEDS, workers=2)
    means = grid.summary.set_index("cluster.node_pools.0.count")["wait_mean_s_mean"]
    assert min(c for c, wait in means.items() if wait <= TARGET_S) == 7
    # The search saw exactly what the grid saw for the values both ran (same keys, same runs).
    pd.testing.assert_series_equal(values.loc[[6, 7, 8], "mean"], means.loc[[6, 7, 8]], check_names=False)

    rerun = size(scenario, "cluster.node_pools.0.count", target, seeds=SEEDS, output=tmp_path / "size")
    assert rerun.answer == 7 and (tmp_path / "size" / "runs.jsonl").read_bytes().count(b"\n") == 4 * SEEDS


def test_unreachable_target_and_bad_bounds(scenario: Path) -> None:
    result = size(scenario, "cluster.node_pools.0.count", "wait_mean_s <= 0", seeds=1, low=4, high=6)
    assert result.answer is None and list(result.values["value"]) == [4, 6]
    with pytest.raises(DcsimError, match="--max: expected a value >= --min"):
        size(scenario, "cluster.node_pools.0.count", "wait_mean_s <= 1", low=5, high=2)
    with pytest.raises(DcsimError, match=r"is not a scenario field; did you mean cluster\.node_pools"):
        size(scenario, "cluster.node_pool.0.count", "wait_mean_s <= 1")


def test_search_stops_below_the_first_value_the_scenario_does_not_allow(tmp_path: Path) -> None:
    from tests.test_serving_engine import constant, scenario, service, synthetic

    data = scenario([service(synthetic(40, "20/s", constant(200), constant(20)))], nodes=1)  # 8 H100: 2 replicas
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(data))
    result = size(path, "workload.inference.services.0.replicas.0.count", "tokens_per_s >= 1e12", seeds=1)
    assert result.answer is None and list(result.values["value"]) == [1, 2]  # 4, then 3, do not fit: not run
    assert "searched up to 2, the largest value the scenario allows" in result.warnings
    assert any("count=3 is not a valid scenario" in w and "cannot place 3 initial replicas" in w
               for w in result.warnings)
    with pytest.raises(DcsimError, match="cannot place 4 initial replicas"):  # an explicit --max must fit
        size(path, "workload.inference.services.0.replicas.0.count", "tokens_per_s >= 1e12", seeds=1, high=4)
