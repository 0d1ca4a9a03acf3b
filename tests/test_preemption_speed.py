"""The ranking kept between passes (tiresias_books.py, las_books.py) decides exactly as the full pass.

Random small workloads (ties in arrival, demands that do not divide the round's arithmetic evenly,
two accelerator models, start-up and checkpoint costs) run twice, with `incremental` on and off:
jobs, job segments and the summary must be equal to the last bit. KeyBlocks is checked against a
sorted list.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dcsim
from dcsim.engine.training import TrainingEngine
from dcsim.policies.base import TRUSTED_SCHEDULERS
from dcsim.policies.scheduling.las import LeastAttainedService
from dcsim.policies.scheduling.ranked import KeyBlocks
from dcsim.policies.scheduling.tiresias import Tiresias
from dcsim.scenario import scenario_from_dict

_EXPLORE = int(os.environ.get("DCSIM_EXPLORE", "0"))
SETTINGS = settings(max_examples=_EXPLORE or 12, derandomize=not _EXPLORE, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

POLICIES: list[dict[str, Any]] = [
    {"name": "tiresias"},
    {"name": "tiresias", "params": {"queues": 3, "thresholds": [20.0, 150.0]}},
    {"name": "las"},
    {"name": "las", "params": {"round": 7.0}},
    {"name": "las", "params": {"round": 0.3}},
]


@st.composite
def workloads(draw: st.DrawFn) -> dict[str, Any]:
    jobs = draw(st.integers(2, 24))
    rows = []
    for _ in range(jobs):
        submit = draw(st.one_of(st.sampled_from([0.0, 5.0, 10.0, 30.0]), st.floats(0, 200).map(lambda x: round(x, 3))))
        duration = draw(st.one_of(st.sampled_from([1.0, 7.0, 60.0]), st.floats(0.5, 300).map(lambda x: round(x, 4))))
        demand = draw(st.sampled_from([1, 1, 2, 3, 4, 6, 8]))
        types = draw(st.sampled_from(["V100", "V100", "K80", "V100|K80"]))
        rows.append((submit, duration, demand, types))
    costs = draw(st.sampled_from([None, {"checkpoint_size": "2GB", "write_bandwidth": "1GB/s",
                                         "read_bandwidth": "4GB/s", "restart_delay": "1.5s"}]))
    return {"rows": rows, "k80": draw(st.booleans()), "v100_nodes": draw(st.integers(1, 2)),
            "startup": draw(st.sampled_from([0.0, 0.0, 2.0])), "costs": costs}


def run(tmp_path: Path, load: dict[str, Any], policy: dict[str, Any], incremental: bool) -> dcsim.RunResult:
    path = tmp_path / "jobs.csv"
    rows = [r if load["k80"] else (*r[:3], "V100") for r in load["rows"]]
    path.write_text("submit,duration,accelerators,types\n" + "".join(f"{s},{d},{a},{t}\n" for s, d, a, t in rows))
    pools = [{"name": "v", "count": load["v100_nodes"], "accelerator": "V100", "accelerators_per_node": 8}]
    if load["k80"]:
        pools.append({"name": "k", "count": 1, "accelerator": "K80", "accelerators_per_node": 8})
    training: dict[str, Any] = {"source": "trace", "path": str(path), "startup": load["startup"]}
    if load["costs"] is not None:
        training["suspension"] = load["costs"]
    data = {"name": "speed", "cluster": {"node_pools": pools}, "workload": {"training": training},
            "policies": {"scheduler": policy, "placement": "pack"}}
    saved = Tiresias.incremental, LeastAttainedService.incremental
    Tiresias.incremental = LeastAttainedService.incremental = incremental
    try:
        return dcsim.run(scenario_from_dict(data))
    finally:
        Tiresias.incremental, LeastAttainedService.incremental = saved


def same(a: dcsim.RunResult, b: dcsim.RunResult) -> None:
    pd.testing.assert_frame_equal(a.jobs, b.jobs, check_exact=True)
    assert a.job_segments is not None and b.job_segments is not None
    pd.testing.assert_frame_equal(a.job_segments, b.job_segments, check_exact=True)
    strip = {"wall_time_s"}
    assert {k: v for k, v in a.summary.items() if k not in strip} == \
           {k: v for k, v in b.summary.items() if k not in strip}


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p['name']}-{p.get('params', {})}")
@SETTINGS
@given(load=workloads())
def test_books_decide_as_the_full_pass(tmp_path: Path, policy: dict[str, Any], load: dict[str, Any]) -> None:
    fast = run(tmp_path, load, policy, incremental=True)
    full = run(tmp_path, load, policy, incremental=False)
    same(fast, full)


def test_books_decide_as_the_full_pass_under_overload(tmp_path: Path) -> None:
    # 60 jobs on 8 V100, arrivals in bursts of equal times: long queues, many preemptions and ties.
    rows = [(float(10 * (i // 6)), 20.0 + (i * 37) % 90 + (i % 7) / 3, [1, 1, 2, 3, 1, 4][i % 6], "V100")
            for i in range(60)]
    load = {"rows": rows, "k80": False, "v100_nodes": 1, "startup": 0.0, "costs": None}
    for policy in POLICIES:
        fast = run(tmp_path, load, policy, incremental=True)
        assert fast.summary["training"]["preemption"]["preemptions"] > 10
        same(fast, run(tmp_path, load, policy, incremental=False))


@SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 400), st.integers(1, 8)), max_size=400))
def test_key_blocks_keep_entries_sorted_with_their_demand_sums(operations: list[tuple[bool, int, int]]) -> None:
    books, reference = KeyBlocks(), {}
    for add, value, demand in operations:
        key = (value % 37 / 3, float(value % 5), value)
        if add and value not in reference:
            books.insert(key, demand, None)  # type: ignore[arg-type]
            reference[value] = (key, demand)
        elif not add and value in reference:
            books.remove(*reference.pop(value))
    expected = sorted(reference.values())
    assert [(key, demand) for key, demand, _ in books] == expected
    assert len(books) == len(expected)
    assert sum(books.sums) == sum(d for _, d in expected)
    assert all(sum(d) == s for d, s in zip(books.demands, books.sums, strict=True))
    # each block's smallest demand (the walk passes over blocks none of whose jobs fits)
    assert all(known in (0, min(demands)) for known, demands in zip(books.mins, books.demands, strict=True))
    assert [books.smallest(i) for i in range(len(books.blocks))] == [min(demands) for demands in books.demands]
    assert books.mins == [min(demands) for demands in books.demands]
    assert all(block and block[-1][0] == last for block, last in zip(books.blocks, books.lasts, strict=True))
    assert all(len(block) <= 64 for block in books.blocks)
    assert math.isfinite(len(books.blocks))


@pytest.mark.parametrize(("demand", "round_s", "submits"), [
    (3, 0.3, (0, 0.1, 0.2)), (3, 0.1, (0, 0, 0)), (3, 1 / 3, (0, 1 / 3, 2 / 3)), (7, 0.7, (0, 0.1, 0.2)),
])
def test_las_near_ties_are_ranked_by_the_exact_keys(tmp_path: Path, demand: int, round_s: float,
                                                     submits: tuple[float, ...]) -> None:
    # Jobs of 3 or 7 accelerators time-sliced in rounds that are not binary fractions: their keys
    # attained / demand tie up to a few ulps at round boundaries, where the order of the full pass
    # depends on rounding. Ranking by c = key - now alone (no exact keys near ties) fails these.
    rows = [(s, 5.0 + i, demand, "V100") for i, s in enumerate(submits)] + [(0.05, 3.0, 1, "V100"),
                                                                             (0.15, 2.0, 2, "V100")]
    load = {"rows": rows, "k80": False, "v100_nodes": 1, "startup": 0.0, "costs": None}
    policy = {"name": "las", "params": {"round": round_s}}
    same(run(tmp_path, load, policy, incremental=True), run(tmp_path, load, policy, incremental=False))


def test_trusted_passes_decide_as_checked_decisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Built-in tiresias and las apply their planned passes without Decision objects and checks
    # (policies.base.TRUSTED_SCHEDULERS): the same run as through schedule() and the engine's checks.
    rows = [(float(10 * (i // 6)), 20.0 + (i * 37) % 90 + (i % 7) / 3, [1, 1, 2, 3, 1, 4][i % 6], "V100|K80")
            for i in range(60)]
    load = {"rows": rows, "k80": True, "v100_nodes": 1, "startup": 2.0, "costs": None}
    for policy in POLICIES:
        trusted = run(tmp_path, load, policy, incremental=True)
        monkeypatch.setattr(TrainingEngine, "trusted_passes_allowed", False)
        same(trusted, run(tmp_path, load, policy, incremental=True))
        same(trusted, run(tmp_path, load, policy, incremental=False))
        monkeypatch.undo()


def test_only_exact_built_in_schedulers_are_trusted() -> None:
    class Derived(LeastAttainedService):
        pass

    assert {LeastAttainedService, Tiresias} <= TRUSTED_SCHEDULERS
    assert Derived not in TRUSTED_SCHEDULERS  # a subclass may override schedule(): its decisions are checked
