"""Engine behaviour on tiny hand-checked cases: gang starts, placement, rejection, policy errors."""

from __future__ import annotations

from typing import Any

import pytest

import dcsim
from dcsim.errors import PolicyError
from dcsim.policies import register
from dcsim.policies.base import Allocation, ClusterView, PlacementRequest, PolicyBase, SchedulerView, StartJob
from dcsim.scenario import scenario_from_dict
from tests.helpers import speed_ratio


def scenario(jobs: list[dict[str, Any]] | None = None, **changes: Any) -> dict[str, Any]:
    """One pool of 2 nodes x 4 V100 (the reference, speed 1.0); jobs arrive 1 s apart."""
    data: dict[str, Any] = {
        "name": "hand", "seed": 1,
        "cluster": {"node_pools": [{"name": "v", "count": 2, "accelerator": "V100", "accelerators_per_node": 4,
                                    "host_power": {"idle": "100W", "busy": "300W"}}]},
        "workload": {"training": {"source": "synthetic", "jobs": 3, "arrival": {"process": "constant", "rate": 1.0},
                                  "accelerators": {"values": [4]},
                                  "duration": {"distribution": "constant", "value": "100s"}}},
        "policies": {"scheduler": "fifo", "placement": "pack"},
    }
    data.update(changes)
    return data


def run(data: dict[str, Any]) -> dcsim.RunResult:
    return dcsim.run(scenario_from_dict(data))


def test_fifo_gang_jobs_on_two_nodes_by_hand() -> None:
    # Jobs of 4 arrive at t=1, 2, 3; two fit at once, the third waits for the first to end at 101.
    jobs = run(scenario()).jobs
    assert jobs["start_s"].tolist() == [1.0, 2.0, 101.0]
    assert jobs["end_s"].tolist() == [101.0, 102.0, 201.0]
    assert jobs["wait_s"].tolist() == [0.0, 0.0, 98.0]
    assert jobs["nodes"].tolist() == [1, 1, 1]
    assert (jobs["state"] == "completed").all()


def test_relative_speed_shortens_run_time_on_faster_accelerators() -> None:
    data = scenario()
    data["cluster"]["node_pools"][0]["accelerator"] = "H100"
    jobs = run(data).jobs
    speed = speed_ratio("generic", "H100", "V100")
    assert jobs["run_s"].iloc[0] == pytest.approx(100.0 / speed, rel=1e-12)


def test_pack_uses_one_node_and_spread_uses_many() -> None:
    data = scenario()
    data["workload"]["training"]["accelerators"] = {"values": [2]}
    data["workload"]["training"]["jobs"] = 1
    assert run(data).jobs["nodes"].tolist() == [1]
    data["policies"]["placement"] = "spread"
    assert run(data).jobs["nodes"].tolist() == [2]


def test_jobs_larger_than_any_pool_are_rejected_with_reason() -> None:
    data = scenario()
    data["workload"]["training"]["accelerators"] = {"values": [16]}
    result = run(data)
    assert (result.jobs["state"] == "rejected").all()
    assert result.jobs["reason"].iloc[0] == "needs 16 accelerators; the cluster has at most 8 of any model it may use"
    assert result.summary["training"]["jobs_rejected"] == 3
    assert result.summary["training"]["jobs_completed"] == 0


def test_horizon_leaves_jobs_unfinished_and_counts_idle_time() -> None:
    result = run(scenario(horizon="150s"))
    assert result.jobs["state"].tolist() == ["completed", "completed", "unfinished"]
    assert result.summary["sim_time_s"] == 150.0
    assert result.summary["training"]["jobs_unfinished"] == 1


def test_startup_holds_accelerators_without_computing() -> None:
    data = scenario()
    data["workload"]["training"]["startup"] = "10s"
    result = run(data)
    assert result.jobs["run_s"].tolist() == [110.0, 110.0, 110.0]
    at_start = result.timeseries[result.timeseries["time_s"] == 1.0].iloc[0]
    assert (at_start["allocated_all"], at_start["busy_all"]) == (4, 0)
    assert result.summary["utilization"]["busy"]["all"] < result.summary["utilization"]["allocated"]["all"]


def test_energy_by_hand() -> None:
    # One 4-accelerator job for 100 s on a 2-node V100 pool; 1 s idle before it.
    from dcsim.calibration import load_calibration
    from dcsim.catalog import load_catalog

    data = scenario()
    data["workload"]["training"]["jobs"] = 1
    result = run(data)
    v100 = load_catalog().accelerator("V100")
    busy = load_calibration().power.training_power("V100")  # Zeus-calibrated training power, not TDP
    assert busy is not None and v100.idle_w.value < busy < v100.tdp_w.value
    idle = v100.idle_w.value
    joules = (8 * idle + 200) * 1.0 + (4 * busy + 4 * idle + 300 + 100) * 100.0
    energy = result.summary["energy"]
    assert energy["it_kwh"] == pytest.approx(joules / 3.6e6, rel=1e-9)
    assert energy["facility_kwh"] == pytest.approx(energy["it_kwh"] * 1.2, rel=1e-9)
    assert energy["carbon_kg"] == pytest.approx(energy["facility_kwh"] * 0.4, rel=1e-9)


class _Bad(PolicyBase):
    def __init__(self, *, mode: str = "ghost") -> None:
        self.mode = mode

    def schedule(self, view: SchedulerView) -> list[StartJob]:
        job = next(iter(view.queued()))
        if self.mode == "ghost":
            return [StartJob(10_000, "V100")]
        if self.mode == "wrong_type":
            return [StartJob(job.id, "TPU-v4")]
        return [StartJob(job.id, "V100"), StartJob(job.id, "V100")]

    def place(self, request: PlacementRequest, view: ClusterView) -> Allocation:
        return ((0, request.demand + 1),)


register("scheduler", "test_bad_scheduler")(type("BadScheduler", (_Bad,), {}))
register("placement", "test_bad_placement")(type("BadPlacement", (_Bad,), {}))


@pytest.mark.parametrize(("mode", "fragment"), [
    ("ghost", "scheduler 'test_bad_scheduler' returned StartJob(job_id=10000, accelerator='V100'): job is not waiting"),
    ("wrong_type", "started job 0 on 'TPU-v4', which it may not use (allowed: V100)"),
    ("twice", "job is not waiting in the queue"),
])
def test_invalid_scheduler_decisions_raise_policy_error(mode: str, fragment: str) -> None:
    data = scenario(policies={"scheduler": {"name": "test_bad_scheduler", "mode": mode}})
    with pytest.raises(PolicyError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        run(data)


def test_invalid_placement_raises_policy_error_naming_the_policy() -> None:
    message = r"placement 'test_bad_placement' for job 0 \(4 x V100\): takes 5 on node v-0"
    with pytest.raises(PolicyError, match=message):
        run(scenario(policies={"placement": "test_bad_placement"}))


def test_loading_a_folder_that_is_not_a_result(tmp_path: Any) -> None:
    from dcsim.errors import ResultError

    with pytest.raises(ResultError, match=r"not a dcsim results folder \(summary.json missing\)"):
        dcsim.RunResult.load(tmp_path)


def test_idle_cluster_without_workload_draws_idle_power_until_the_horizon() -> None:
    from dcsim.catalog import load_catalog

    data = scenario(horizon="1h")
    data["workload"] = {}
    result = run(data)
    idle_w = 8 * load_catalog().accelerator("V100").idle_w.value + 2 * 100.0
    assert result.summary["sim_time_s"] == 3600.0
    assert result.summary["energy"]["it_kwh"] == pytest.approx(idle_w * 3600 / 3.6e6, rel=1e-12)
    assert "training" not in result.summary
