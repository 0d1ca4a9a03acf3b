"""The network and storage in whole runs: all-reduce time, oversubscription, checkpoints, dataset
input, capacity, cold start, partitions, network and storage energy. Expected figures are computed
by hand from the formulas in engine/traffic.py, not read back from the engine."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

import dcsim
from dcsim.build import build_model
from dcsim.errors import DcsimError, ScenarioError
from dcsim.scenario.loading import scenario_from_dict

HB = 50e9  # host link bytes/s
PARAMS = 1e9
GRAD = 2 * PARAMS  # bf16 gradients
STEP = 0.5  # compute seconds per step on the reference accelerator (H100 here)
HOST_LAT = FABRIC_LAT = 1e-6


def scenario(nodes: int = 2, jobs: int = 1, demand: int = 8, duration: float = 3000.0, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "net", "seed": 0,
        "cluster": {"node_pools": [{"name": "n", "count": nodes, "accelerator": "H100", "accelerators_per_node": 8,
                                    "host_power": {"idle": 0}}]},
        "network": {"topology": "leaf_spine", "host_bandwidth": HB, "hosts_per_leaf": 4, "spines": 1},
        "workload": {"training": {
            "source": "synthetic", "jobs": jobs, "arrival": {"process": "constant", "rate": 1e6},
            "reference_accelerator": "H100", "accelerators": {"values": [demand]},
            "duration": {"distribution": "constant", "value": duration},
            "communication": {"parameters": PARAMS, "step_time": STEP}}},
        "policies": {"scheduler": "fifo", "placement": "pack"}, "energy": {"pue": 1.0},
    }
    for dotted, value in extra.items():
        target = data
        *path, last = dotted.split(".")
        for key in path:
            target = target.setdefault(key, {})
        target[last] = value
    return data


def run(data: dict[str, Any], base_dir: str = ".") -> dcsim.RunResult:
    return dcsim.run(scenario_from_dict(copy.deepcopy(data), base_dir=base_dir))


def ring(n: int, size: float, bandwidth: float, latency: float) -> float:
    return 2 * (n - 1) / n * size / bandwidth + 2 * (n - 1) * latency


def exposed_comm(jobs_row: Any) -> float:
    """Seconds of exposed communication per step, from the job's comm share and the compute time."""
    share = jobs_row["comm_share"]
    return share * STEP / (1 - share - jobs_row["io_share"])


def test_ring_all_reduce_on_an_idle_network_matches_the_formula() -> None:
    # 16 accelerators on two nodes of one leaf: the ring crosses host links (50 GB/s), two hops of
    # host latency each; the step's communication is 2 (n-1)/n S/B + 2 (n-1) x latency.
    result = run(scenario(nodes=2, demand=16, **{"policies.placement": "spread"}))
    job = result.jobs.iloc[0]
    assert job["nodes"] == 2
    assert exposed_comm(job) == pytest.approx(ring(16, GRAD, HB, 2 * HOST_LAT), rel=1e-9)
    # The quoted work holds for this (fewest-nodes, idle-network) placement: run time = duration.
    assert job["run_s"] == pytest.approx(3000.0, rel=1e-9)


def _interleaved(tmp_path: Path, uplink: float) -> str:
    """Two leaves of four hosts each, hosts alternating between them (n-0 on leaf-a, n-1 on leaf-b,
    ...), so packing a 16-accelerator job on nodes 0 and 1 crosses the spine."""
    lines = [f"n-{i} leaf-{'ab'[i % 2]} {HB} {HOST_LAT}" for i in range(8)]
    lines += [f"leaf-a spine {uplink} {FABRIC_LAT}", f"leaf-b spine {uplink} {FABRIC_LAT}"]
    path = tmp_path / "interleaved.edges"
    path.write_text("\n".join(lines) + "\n")
    return path.name


@pytest.mark.parametrize("oversubscription", [4.0, 1.0])
def test_jobs_spread_over_two_leaves_behind_an_oversubscribed_spine(tmp_path: Path, oversubscription: float) -> None:
    uplink = 4 * HB / oversubscription  # four hosts of HB under each leaf
    packed = run(scenario(nodes=8, jobs=4, demand=16))  # contiguous leaves: every ring stays in its leaf
    spread = run(scenario(nodes=8, jobs=4, demand=16, **{
        "network": {"topology": "edge_list", "file": _interleaved(tmp_path, uplink)}}), base_dir=str(tmp_path))
    for job in packed.jobs.itertuples():
        assert exposed_comm(job._asdict()) == pytest.approx(ring(16, GRAD, HB, 2 * HOST_LAT), rel=1e-9)
    # Spread: the four rings' up-hops share one uplink per leaf: each gets min(HB, uplink / 4).
    share = min(HB, uplink / 4)
    expected = ring(16, GRAD, share, 2 * HOST_LAT + 2 * FABRIC_LAT)
    for job in spread.jobs.itertuples():
        assert exposed_comm(job._asdict()) == pytest.approx(expected, rel=1e-9)
    slowdown = spread.jobs["run_s"].to_numpy() / packed.jobs["run_s"].to_numpy()
    compute = STEP
    assert slowdown == pytest.approx((compute + expected) / (compute + ring(16, GRAD, HB, 2 * HOST_LAT)), rel=1e-9)
    if oversubscription > 1:
        assert slowdown.min() > 1.35  # a quarter of the bandwidth: (0.5 + 0.30) / (0.5 + 0.075) = 1.39
    else:
        assert slowdown.max() < 1.001  # only the extra hop latency


def checkpointing(jobs: int, **extra: Any) -> dict[str, Any]:
    return scenario(nodes=2, jobs=jobs, demand=8, **{
        "storage": {"tiers": [{"name": "pfs", "kind": "parallel_fs", "capacity": 1e15, "read_bandwidth": 100e9,
                               "write_bandwidth": 10e9}]},
        "workload.training.checkpoint": {"tier": "pfs", "interval": 2000, "bytes_per_parameter": 10},
        **extra})


def test_flows_that_start_and_end_at_one_instant_are_settled_together() -> None:
    # Three two-node jobs on two nodes run one after another (FIFO): the first job's end and the
    # second one's start fall on one instant and cost one recomputation of the rates, not two; each
    # job still gets its rates at its start (alone on its two hosts it runs at the quoted speed).
    data = scenario(nodes=2, jobs=3, demand=16)
    model = build_model(scenario_from_dict(copy.deepcopy(data), base_dir="."))
    model.simulation.run()
    assert model.simulation.training.completed == 3
    assert model.network is not None and model.network.fabric.changes == 4  # start, end+start twice, end
    jobs = run(data).jobs.sort_values("start_s")
    assert jobs["run_s"].to_numpy() == pytest.approx([3000.0] * 3, rel=1e-9)
    assert jobs["start_s"].to_numpy()[1:] == pytest.approx(jobs["end_s"].to_numpy()[:-1], rel=1e-12)


def test_checkpoint_write_takes_size_over_bandwidth_alone_and_longer_when_shared() -> None:
    size = 10 * PARAMS
    alone = run(checkpointing(jobs=1)).jobs.iloc[0]
    assert alone["checkpoints"] == 1
    assert alone["io_time_s"] == pytest.approx(size / 10e9, rel=1e-9)  # the stall
    assert alone["run_s"] == pytest.approx(3000 + size / 10e9, rel=1e-9)
    shared = run(checkpointing(jobs=2)).jobs  # both write at t = 2000 s (1 us apart): half the bandwidth each
    assert shared["io_time_s"].to_numpy() == pytest.approx([2 * size / 10e9] * 2, abs=1e-5)


def test_an_overlapped_checkpoint_does_not_stall_the_job() -> None:
    data = checkpointing(jobs=1)
    data["workload"]["training"]["checkpoint"]["mode"] = "overlap"
    job = run(data).jobs.iloc[0]
    assert job["checkpoints"] == 1 and job["io_time_s"] == 0.0
    assert job["run_s"] == pytest.approx(3000.0, rel=1e-9)


def test_a_checkpoint_that_does_not_fit_fails_the_job_with_a_reason() -> None:
    data = checkpointing(jobs=2)
    data["storage"]["tiers"][0]["capacity"] = 15e9  # room for one 10 GB checkpoint, not two
    result = run(data)
    states = sorted(result.jobs["state"])
    assert states == ["completed", "failed"]
    failed = result.jobs[result.jobs["state"] == "failed"].iloc[0]
    assert "does not fit on storage tier pfs" in failed["reason"]
    assert failed["end_s"] == pytest.approx(2000.0, abs=1e-3)
    assert result.summary["training"]["jobs_failed"] == 1
    assert result.summary["storage"]["pfs"]["peak_used_bytes"] == pytest.approx(10e9)
    assert result.summary["storage"]["pfs"]["final_used_bytes"] == 0.0  # freed when the job completed


def test_dataset_input_slower_than_the_job_needs_stretches_it() -> None:
    # 8 accelerators x 2 GB/s wanted = 16 GB/s from a tier that reads 4 GB/s: four times longer.
    data = scenario(nodes=1, demand=8, **{
        "storage": {"tiers": [{"name": "pfs", "kind": "parallel_fs", "capacity": 1e15, "read_bandwidth": 4e9,
                               "write_bandwidth": 4e9}]},
        "workload.training.dataset": {"tier": "pfs", "rate": 2e9}})
    job = run(data).jobs.iloc[0]
    assert job["run_s"] == pytest.approx(4 * 3000.0, rel=1e-9)
    assert job["io_share"] == pytest.approx(0.75, rel=1e-9)


def test_node_local_storage_does_not_touch_the_network() -> None:
    data = checkpointing(jobs=2)
    data["storage"]["tiers"] = [{"name": "nvme", "kind": "node_local", "capacity": 1e12, "read_bandwidth": 20e9,
                                 "write_bandwidth": 10e9}]
    data["workload"]["training"]["checkpoint"]["tier"] = "nvme"
    jobs = run(data).jobs  # one job per node: each writes to its own drive at full speed
    assert jobs["io_time_s"].to_numpy() == pytest.approx([1.0, 1.0], rel=1e-9)


def test_network_and_storage_power_are_integrated_into_energy() -> None:
    data = scenario(nodes=2, demand=8, duration=3600.0, **{
        "network.power": {"switch_idle": 100.0, "port": 10.0, "nic": 5.0},
        "storage": {"tiers": [{"name": "pfs", "kind": "parallel_fs", "capacity": 2e12, "read_bandwidth": 1e9,
                               "write_bandwidth": 1e9, "power_per_tb": 50.0}]}})
    result = run(data)
    # leaf_spine of 2 hosts: one leaf and one spine; switch ports: leaf 2 down + 1 up, spine 1 down + 1 to
    # the storage node; NICs: 2. Storage: 2 TB x 50 W.
    network_w = 2 * 100.0 + 5 * 10.0 + 2 * 5.0
    hours = result.summary["sim_time_s"] / 3600
    energy = result.summary["energy"]["by_component_kwh"]
    assert energy["network"] == pytest.approx(network_w * hours / 1000, rel=1e-6)
    assert energy["storage"] == pytest.approx(100.0 * hours / 1000, rel=1e-6)


def test_cold_start_loads_weights_from_a_storage_tier() -> None:
    data = {
        "name": "cold", "seed": 0, "horizon": 600,
        "cluster": {"node_pools": [{"name": "h", "count": 1, "accelerator": "H100", "accelerators_per_node": 8}]},
        "storage": {"tiers": [{"name": "s3", "kind": "object_store", "capacity": 1e15, "read_bandwidth": 1e9,
                               "write_bandwidth": 1e9, "latency": 0.05}]},
        "workload": {"inference": {"services": [{
            "name": "chat", "model": "Llama-2-13B", "weights_from": "s3", "min_replicas": 0,
            "replicas": [{"accelerator": "H100", "tensor_parallel": 1, "count": 0, "max_count": 1}],
            "requests": {"source": "synthetic", "count": 3, "arrival": {"process": "constant", "rate": 0.1},
                         "prompt_tokens": {"distribution": "constant", "value": 100},
                         "output_tokens": {"distribution": "constant", "value": 10}}}]}},
        "policies": {"autoscaler": {"name": "queue_target", "target_outstanding": 1}},
    }
    result = run(data)
    replica = result.replicas.iloc[0]
    weights = 13015864320 * 2
    assert replica["ready_s"] - replica["requested_s"] == pytest.approx(weights / 1e9 + 0.05, rel=1e-6)


def test_bad_network_and_storage_input_fails_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(DcsimError, match="no storage tier named 'nope'"):
        run(scenario(**{"workload.training.dataset": {"tier": "nope", "rate": 1e9}}))
    with pytest.raises(DcsimError, match="needs host_bandwidth"):
        run(scenario(**{"network": {"topology": "fat_tree"}}))
    no_count = scenario()
    del no_count["workload"]["training"]["communication"]["parameters"]
    with pytest.raises(ScenarioError, match=r"communication\.parameters: model 'generic' has no parameter count"):
        run(no_count)
    (tmp_path / "typo.edges").write_text("n-0 sw 1e9\nn-1 sw 1e9\nn-2 sww 1e9\n")
    with pytest.raises(ScenarioError, match="'sww', which is not a cluster node"):
        run(scenario(nodes=3, **{"network": {"topology": "edge_list", "file": "typo.edges"}}), base_dir=str(tmp_path))


def test_a_job_larger_than_any_network_partition_is_rejected_with_a_reason(tmp_path: Path) -> None:
    # Two islands of two nodes (16 accelerators each): a 32-accelerator job cannot run anywhere.
    (tmp_path / "islands.edges").write_text("n-0 a 1e10\nn-1 a 1e10\nn-2 b 1e10\nn-3 b 1e10\n")
    network = {"topology": "edge_list", "file": "islands.edges", "allow_partitions": True}
    with pytest.raises(ScenarioError, match="partitions; use topology_aware"):
        run(scenario(nodes=4, demand=32, network=network), base_dir=str(tmp_path))
    result = run(scenario(nodes=4, jobs=2, demand=32, network=network,
                          **{"policies.placement": "topology_aware"}), base_dir=str(tmp_path))
    assert set(result.jobs["state"]) == {"rejected"}
    assert "largest connected partition of the network has 16" in result.jobs["reason"].iloc[0]
    ok = run(scenario(nodes=4, jobs=2, demand=16, network=network, **{"policies.placement": "topology_aware"}),
             base_dir=str(tmp_path))
    assert set(ok.jobs["state"]) == {"completed"} and set(ok.jobs["nodes"]) == {2}
