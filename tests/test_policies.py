"""Conformance suite over every registered policy, plus registry behaviour."""

from __future__ import annotations

import inspect

import pytest

import dcsim
from dcsim.errors import PolicyError
from dcsim.policies import build, describe, names, register
from dcsim.policies.registry import get_class
from dcsim.policies.scheduling.easy_backfill import EasyBackfill
from dcsim.scenario import scenario_from_dict
from tests.helpers import tiny_scenario

SCHEDULERS = [n for n in names("scheduler") if not n.startswith("test_")]
PLACEMENTS = [n for n in names("placement") if not n.startswith("test_")]


ALL = [("scheduler", n) for n in SCHEDULERS] + [("placement", n) for n in PLACEMENTS]


@pytest.mark.parametrize(("family", "name"), ALL)
def test_params_round_trip_and_keyword_only(family: str, name: str) -> None:
    policy = build(family, name)
    params = policy.get_params()
    clone = build(family, name, params)
    assert clone.get_params() == params
    for param in inspect.signature(type(policy).__init__).parameters.values():
        assert param.name == "self" or param.kind is inspect.Parameter.KEYWORD_ONLY
    assert policy.family == family and policy.name == name


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_every_policy_pair_completes_all_jobs_deterministically(scheduler: str, placement: str) -> None:
    # The engine validates each decision (PolicyError on a bad one), so finishing is the validity check.
    data = tiny_scenario(policies={"scheduler": scheduler, "placement": placement})
    first = dcsim.run(scenario_from_dict(data))
    second = dcsim.run(scenario_from_dict(data))
    assert first.summary["training"]["jobs_completed"] == first.summary["training"]["jobs_submitted"] == 60
    first.summary.pop("wall_time_s"), second.summary.pop("wall_time_s")
    assert first.summary == second.summary
    assert first.jobs.equals(second.jobs)


def test_unknown_policy_lists_choices_and_close_match() -> None:
    with pytest.raises(PolicyError, match=r"unknown scheduler policy 'easy_backfil'; did you mean easy_backfill\?"):
        get_class("scheduler", "easy_backfil")


def test_bad_parameters_are_named() -> None:
    with pytest.raises(PolicyError, match="unknown parameter 'scan' \\(parameters: max_scan\\)"):
        build("scheduler", "easy_backfill", {"scan": 3})
    with pytest.raises(PolicyError, match="max_scan must be >= 1, got 0"):
        build("scheduler", "easy_backfill", {"max_scan": 0})


def test_register_rejects_positional_parameters_and_duplicates() -> None:
    class Positional:
        def __init__(self, x: int) -> None:
            self.x = x

    with pytest.raises(PolicyError, match="must be keyword-only"):
        register("scheduler", "test_positional")(Positional)
    with pytest.raises(PolicyError, match="already registered"):
        register("scheduler", "fifo")(type("Other", (), {"__init__": lambda self: None}))


def test_describe_lists_parameters_with_defaults() -> None:
    rows = {name: params for name, _, params in describe("scheduler")}
    assert rows["easy_backfill"] == {"max_scan": 1000}
    assert rows["fifo"] == {}


class _NoMemo(EasyBackfill):
    def schedule(self, view):  # type: ignore[no-untyped-def]
        self._memo = None  # force a full rescan on every pass
        return super().schedule(view)


register("scheduler", "test_easy_no_memo")(_NoMemo)


@pytest.mark.parametrize("max_scan", [3, 1000])
def test_easy_backfill_scan_memo_changes_no_decision(max_scan: int) -> None:
    base = tiny_scenario()
    base["workload"]["training"].update(jobs=300, arrival={"process": "gamma", "rate": "60/h", "cv": 3})
    runs = []
    for name in ("easy_backfill", "test_easy_no_memo"):
        data = dict(base, policies={"scheduler": {"name": name, "max_scan": max_scan}})
        runs.append(dcsim.run(scenario_from_dict(data)).jobs)
    assert runs[0][["start_s", "accelerator_model"]].equals(runs[1][["start_s", "accelerator_model"]])
    assert runs[0]["wait_s"].mean() > 0  # queues formed, so backfilling had work to do


def test_easy_backfill_beats_fifo_on_a_blocking_workload() -> None:
    data = tiny_scenario()
    data["workload"]["training"].update(jobs=200, accelerators={"values": [1, 16], "weights": [9, 1]},
                                        arrival={"process": "poisson", "rate": "40/h"}, estimate_error=0.0)
    waits = {}
    for scheduler in ("fifo", "easy_backfill"):
        summary = dcsim.run(scenario_from_dict(dict(data, policies={"scheduler": scheduler}))).summary
        waits[scheduler] = summary["training"]["wait_s"]["mean"]
    assert waits["easy_backfill"] < 0.5 * waits["fifo"]


def test_compare_in_worker_processes_matches_serial() -> None:
    data = tiny_scenario()
    variants = ["scheduler=fifo", "scheduler=easy_backfill,placement=spread"]
    serial = dcsim.compare(scenario_from_dict(data), variants, seeds=2)
    parallel = dcsim.compare(scenario_from_dict(data), variants, seeds=2, workers=2)
    assert serial.table.equals(parallel.table)
    assert list(serial.table["variant"]) == [variants[0]] * 2 + [variants[1]] * 2
    # common random numbers: every variant saw the same jobs for a seed
    fifo, easy = serial.jobs_by_variant[variants[0]], serial.jobs_by_variant[variants[1]]
    same = ["seed", "submit_s", "accelerators", "work_ref_s"]
    assert fifo[same].equals(easy[same])


def test_summary_table_has_paired_differences_from_the_first_variant() -> None:
    comparison = dcsim.compare(scenario_from_dict(tiny_scenario()), ["scheduler=fifo", "scheduler=sjf"], seeds=3)
    table = comparison.summary_table().set_index(["variant", "metric"])
    runs = comparison.table.set_index(["variant", "seed"])["wait_mean_s"]
    diffs = (runs.loc["scheduler=sjf"] - runs.loc["scheduler=fifo"]).to_numpy()
    row = table.loc[("scheduler=sjf", "wait_mean_s")]
    assert row["diff_vs_first"] == pytest.approx(diffs.mean())
    assert row["mean"] == pytest.approx(runs.loc["scheduler=sjf"].mean())
    assert row["runs"] == 3
    assert row["diff_ci95"] == pytest.approx(4.302652729911275 * diffs.std(ddof=1) / 3**0.5)  # t(0.975, 2)
    assert table.loc[("scheduler=fifo", "wait_mean_s")]["diff_vs_first"] == 0.0


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_under_suspension_costs_is_deterministic_and_loses_nothing(scheduler: str) -> None:
    # Decisions of every kind (StartJob, PreemptJob, NextPass) go through the engine's checks; with
    # checkpoint costs and a horizon, runs repeat exactly and every job is in exactly one final state.
    data = tiny_scenario(policies={"scheduler": scheduler, "placement": "pack"}, horizon="20h")
    data["workload"]["training"]["suspension"] = {"checkpoint_size": "50GB", "write_bandwidth": "2GB/s",
                                                  "read_bandwidth": "5GB/s", "restart_delay": "30s"}
    first, second = dcsim.run(scenario_from_dict(data)), dcsim.run(scenario_from_dict(data))
    assert first.jobs.equals(second.jobs)
    assert first.job_segments is not None and first.job_segments.equals(second.job_segments)
    jobs = first.jobs
    assert set(jobs["state"]) <= {"completed", "unfinished", "rejected", "failed"} and len(jobs) == 60
    policy = build("scheduler", scheduler)
    if not getattr(policy, "preemptive", False):
        assert (jobs["preemptions"] == 0).all() and "preemption" not in first.summary["training"]
    else:
        assert "fairness" in first.summary["training"]
