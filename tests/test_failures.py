"""Failures on the shared fleet: conservation, common random numbers, spares, links, serving, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dcsim
from dcsim.build.model import build_model
from dcsim.errors import ScenarioError
from dcsim.scenario import load_scenario, scenario_from_dict
from tests.helpers import SCENARIOS, tiny_scenario
from tests.helpers import scenario_problems as problems
from tests.helpers import write_yaml as write

RESET = {"share": 0.3, "repair": {"mean": "5min", "distribution": "exponential"}}
FAILURES = {"accelerator": {"mtbf": "40h", "causes": {"fault": {"share": 0.7, "repair": "2h"}, "reset": RESET}},
            "node": {"weibull": {"shape": 0.8, "scale": "60h"}},
            "detection": "3min"}


def failing(**changes: Any) -> dict[str, Any]:
    data = tiny_scenario(failures=FAILURES, **changes)
    data["workload"]["training"]["checkpoint"] = {"interval": "10min", "save_time": "20s"}
    return data


def run(data: dict[str, Any], seed: int | None = None) -> dcsim.RunResult:
    return dcsim.run(scenario_from_dict(data), seed=seed)


# --- conservation -------------------------------------------------------------------------------------
def test_nothing_under_repair_is_ever_allocated() -> None:
    """Step the simulation event by event: on every node, free + out of service + held == its size."""
    model = build_model(scenario_from_dict(failing()))
    cluster, training = model.cluster, model.simulation.training
    env = model.simulation.env
    training.start()
    assert model.failures is not None
    model.failures.start()
    steps = checked_out = 0
    while env.peek() < float("inf") and steps < 200_000:
        env.step()
        steps += 1
        held = [0] * len(cluster.nodes)
        for job in training.holding():
            for node, count in job.allocation:
                held[node] += count
        for node in cluster.nodes:
            out = cluster.out_of_service.get(node.id, 0)
            checked_out += out
            assert cluster.free_on[node.id] + out + held[node.id] == node.size, (env.now, node.name)
    assert checked_out > 0  # repairs did take accelerators out
    assert training.finished == len(training.jobs)


def test_work_is_conserved_and_lost_work_is_not_billed() -> None:
    """Speed 1 (H100 pool as reference, one model): kept computing equals the work; the rest is lost."""
    data = failing()
    data["cluster"]["node_pools"] = data["cluster"]["node_pools"][:1]
    data["workload"]["training"].update(models={"generic": 1}, reference_accelerator="H100")
    result = run(data)
    jobs = result.jobs
    assert (jobs["state"] == "completed").all()
    assert jobs["interruptions"].sum() > 0 and jobs["lost_service_s"].sum() > 0
    kept = (jobs["attained_service_s"] - jobs["lost_service_s"]) / jobs["accelerators"] - jobs["checkpoint_s"]
    assert np.allclose(kept, jobs["work_ref_s"], rtol=1e-9, atol=1e-6)
    assert np.allclose(jobs["lost_service_s"] / jobs["accelerators"], jobs["lost_work_ref_s"], rtol=1e-9, atol=1e-6)
    section = result.summary["failures"]
    assert section["job_interruptions"] == int(jobs["interruptions"].sum())
    assert 0 < section["ettr"] < 1
    hit = result.failures["jobs_hit"].str.split(";").explode()
    assert len(hit[hit != ""]) == section["job_interruptions"]
    assert result.failures["lost_accelerator_s"].sum() == pytest.approx(jobs["lost_service_s"].sum())


def test_failures_are_common_random_numbers_across_policies() -> None:
    frames = [run(failing(policies={"scheduler": name, "placement": "pack"})).failures
              for name in ("fifo", "sjf", "las")]
    columns = ["time_s", "component", "node", "cause", "repair_s"]
    for other in frames[1:]:  # each run stops drawing failures at its own end: compare the common part
        common = min(len(frames[0]), len(other))
        assert frames[0][columns].iloc[:common].equals(other[columns].iloc[:common])
    assert min(len(frame) for frame in frames) >= 2


def test_a_spare_puts_the_node_back_after_the_swap() -> None:
    data = failing()
    data["failures"] = {"node": {"mtbf": "20h", "causes": {"board": {"share": 1.0, "repair": "3d"}}},
                        "spares": [{"pool": "gpu", "nodes": 1, "swap_delay": "30min"}]}
    result = run(data)
    gpu = result.failures[result.failures["pool"] == "gpu"]
    assert len(gpu) >= 1
    first = gpu.iloc[0]
    assert bool(first["spare"]) and first["back_s"] - first["time_s"] == pytest.approx(1800.0)
    # One spare: a second gpu failure within 3 days of the first waits for its own repair.
    later = gpu[(gpu["time_s"] < first["time_s"] + 3 * 86400) & (gpu.index > gpu.index[0])]
    assert not later["spare"].any()
    assert result.summary["failures"]["spares_used"] == int(result.failures["spare"].sum())


def test_a_link_failure_stops_multi_node_jobs_only() -> None:
    data = failing()
    data["failures"] = {"link": {"mtbf": "5h"}}
    data["workload"]["training"]["accelerators"] = {"values": [4, 16], "weights": [1, 1]}
    data["policies"]["placement"] = "spread"
    result = run(data)
    jobs = result.jobs.set_index("job_id")
    hit = {int(j) for cell in result.failures["jobs_hit"] for j in cell.split(";") if j}
    assert hit, "no job was hit"
    assert all(jobs.loc[j, "nodes"] > 1 or jobs.loc[j, "interruptions"] > 0 for j in hit)
    assert (jobs.loc[list(hit), "accelerators"] > 1).all()


def test_lemons_fail_more_often() -> None:
    data = failing()
    data["failures"] = {"accelerator": {"mtbf": "200h"}, "lemons": {"fraction": 1.0, "rate_multiplier": 10}}
    plain = failing()
    plain["failures"] = {"accelerator": {"mtbf": "200h"}}
    lemon = sum(len(run(data, seed).failures) for seed in range(5))
    normal = sum(len(run(plain, seed).failures) for seed in range(5))
    assert lemon > 5 * max(normal, 1)


# --- serving ------------------------------------------------------------------------------------------
def test_lost_replicas_retry_their_requests_and_every_request_ends_once() -> None:
    scenario = load_scenario(SCENARIOS / "shared_h100.yaml",
                             ["failures.node.mtbf=3h", "failures.request_retries=1", "horizon=6h"])
    result = dcsim.run(scenario)
    serving = result.summary["failures"]["serving"]
    assert serving["replicas_lost"] > 0 and serving["requests_retried"] > 0
    requests = result.requests
    assert requests["state"].isin(["completed", "rejected", "unfinished"]).all()
    assert requests["request_id"].is_unique
    failed = requests[requests["reason"].str.startswith("lost with its replica")]
    assert len(failed) == serving["requests_failed"]


# --- outputs and bad input ------------------------------------------------------------------------------
def dcsim_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dcsim", *args], capture_output=True, text=True, timeout=300)


def test_cli_run_writes_failures_csv_and_summary(tmp_path: Path) -> None:
    path = write(tmp_path, failing())
    out = tmp_path / "out"
    done = dcsim_cli("run", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    header = (out / "failures.csv").read_text().splitlines()[0]
    assert header.startswith("time_s,component,node,pool,cause")
    summary = json.loads((out / "summary.json").read_text())
    assert "ettr" in summary["failures"]


@pytest.mark.parametrize(("failures", "field", "expected"), [
    ({"accelerator": {"mtbf": 0}}, "failures.accelerator.mtbf", "greater than 0"),
    ({"node": {"weibull": {"shape": 0, "scale": "10h"}}}, "failures.node.weibull.shape", "greater than 0"),
    ({"accelerator": {"mtbf": "10h", "causes": {"a": {"share": 0.5, "repair": "1h"},
                                                "b": {"share": 0.4, "repair": "1h"}}}},
     "failures.accelerator.causes", "sum to 1"),
    ({"accelerator": {"mtbf": "10h"}, "spares": [{"pool": "gpu", "nodes": 3}]}, "failures", "at most the pool"),
    ({"profile": "llama9"}, "failures", "unknown profile"),
])
def test_bad_failure_settings_are_one_line(tmp_path: Path, failures: dict[str, Any], field: str,
                                           expected: str) -> None:
    found = problems(write(tmp_path, tiny_scenario(failures=failures)))
    assert len(found) == 1 and "\n" not in found[0], found
    assert field in found[0] and expected in found[0], found


def test_interval_shorter_than_the_save_time_is_refused(tmp_path: Path) -> None:
    data = failing()
    data["workload"]["training"]["checkpoint"] = {"interval": "1min", "save_time": "2min"}
    found = problems(write(tmp_path, data))
    assert len(found) == 1 and "workload.training.checkpoint" in found[0] and "shorter than the save" in found[0]
    done = dcsim_cli("run", str(write(tmp_path, data)), "-o", str(tmp_path / "never"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "never").exists()


def test_the_llama3_profile_loads_with_its_source() -> None:
    from dcsim.scenario.failures import component_classes, failure_profiles

    profile = failure_profiles()["llama3-405b"]
    assert "2407.21783" in profile["source"]
    scenario = scenario_from_dict(tiny_scenario(failures={"profile": "llama3-405b"}))
    assert scenario.failures is not None
    classes = component_classes(scenario.failures)
    # 419 interruptions in 54 days on 16,384 GPUs / 2,048 hosts, rebuilt from the per-class rates
    hours = 54 * 24
    total = sum(hours * 3600 * count / classes[name].mean_time_to_failure
                for name, count in (("accelerator", 16384), ("node", 2048), ("link", 2048)))
    assert total == pytest.approx(419, rel=0.002)


def test_young_daly_without_a_checkpoint_cost_or_failures_is_refused() -> None:
    data = failing()
    data["workload"]["training"]["checkpoint"] = {"policy": "young_daly"}
    with pytest.raises(ScenarioError, match="young_daly needs a checkpoint cost"):
        run(data)
    data = tiny_scenario()
    data["workload"]["training"]["checkpoint"] = {"policy": "young_daly", "save_time": "1min"}
    with pytest.raises(ScenarioError, match="young_daly needs a failures section"):
        run(data)


# --- switches ------------------------------------------------------------------------------------------
def test_a_failed_spine_reroutes_and_a_failed_leaf_cuts_its_hosts_off() -> None:
    from dcsim.model.topology import leaf_spine

    hosts = [f"h{i}" for i in range(8)]
    topology = leaf_spine(hosts, hosts_per_leaf=4, spines=2, host_bandwidth=50e9)
    before = topology.path("h0", "h5")
    crossing = {topology.links[i].target for i in before} | {topology.links[i].source for i in before}
    spine = next(node for node in crossing if node.startswith("spine"))
    topology.set_down(spine, True)
    after = topology.path("h0", "h5")
    assert all(spine not in (topology.links[i].source, topology.links[i].target) for i in after)
    assert topology.cut_off() == []
    topology.set_down("leaf-1", True)
    assert topology.cut_off() == ["h4", "h5", "h6", "h7"]
    with pytest.raises(ScenarioError):
        topology.path("h0", "h5")
    topology.set_down("leaf-1", False)
    topology.set_down(spine, False)
    assert topology.path("h0", "h5") == before  # repaired: the same route as before
    topology.set_link_down("h5", "leaf-1", True)  # a host's only link: cut off
    assert topology.cut_off() == ["h5"]
    topology.set_link_down("h5", "leaf-1", False)
    assert topology.cut_off() == [] and topology.path("h0", "h5") == before


def test_switch_failures_on_the_fat_tree_reroute_or_stop_jobs_and_conserve_accelerators() -> None:
    scenario = load_scenario(SCENARIOS / "fat_tree_placement.yaml", [
        "failures.switch.mtbf=30h", "failures.switch.causes={reboot: {share: 1.0, repair: 30min}}",
        "failures.fabric_link.mtbf=300h", "workload.training.jobs=60"])
    model = build_model(scenario)
    cluster, training, env = model.cluster, model.simulation.training, model.simulation.env
    training.start()
    assert model.failures is not None
    model.failures.start()
    while env.peek() < float("inf"):
        env.step()
        held = [0] * len(cluster.nodes)
        for job in training.holding():
            for node, count in job.allocation:
                held[node] += count
        for node in cluster.nodes:
            assert cluster.free_on[node.id] + cluster.out_of_service.get(node.id, 0) + held[node.id] == node.size
    assert training.finished == len(training.jobs)
    rows = model.failures.log.rows
    assert sum(1 for row in rows if row[1] == "switch") >= 3
    assert sum(1 for row in rows if row[1] == "fabric_link") >= 3
    hit = {int(j) for row in rows if row[1] in ("switch", "fabric_link") for j in str(row[9]).split(";") if j}
    # stopped jobs were on the fabric (a ring, or a dataset stream from the tier) and count the interruption
    assert hit and all(job.interruptions >= 1 for job in training.jobs if job.id in hit)


@pytest.mark.parametrize("kind", ["switch", "fabric_link"])
def test_network_failures_need_a_network(tmp_path: Path, kind: str) -> None:
    found = problems(write(tmp_path, tiny_scenario(failures={kind: {"mtbf": "10h"}})))
    assert len(found) == 1 and f"failures.{kind}" in found[0] and "network section" in found[0]


@pytest.mark.parametrize("policy", [{"name": "tiresias"}, {"name": "las", "params": {"round": 360.0}}])
def test_kept_rankings_agree_with_full_passes_under_failures(policy: dict[str, Any]) -> None:
    """Failures move jobs out of the running set at any moment: the kept rankings of tiresias and las
    (policies/scheduling/ranked.py) must still decide as a full pass does."""
    from dcsim.policies.scheduling.las import LeastAttainedService
    from dcsim.policies.scheduling.tiresias import Tiresias

    data = failing(policies={"scheduler": policy, "placement": "pack"})
    data["failures"]["accelerator"]["mtbf"] = "8h"
    frames = []
    saved = Tiresias.incremental, LeastAttainedService.incremental
    try:
        for incremental in (True, False):
            Tiresias.incremental = LeastAttainedService.incremental = incremental
            frames.append(run(data).jobs)
    finally:
        Tiresias.incremental, LeastAttainedService.incremental = saved
    assert frames[0]["interruptions"].sum() > 0 and frames[0]["preemptions"].sum() > 0
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_a_failed_storage_tier_stalls_its_dataset_streams_until_repaired() -> None:
    """fat_tree_placement streams every job's dataset from the pfs tier: while it is down they stall
    (I/O time grows, no work is lost, no job is stopped); checkpoints due meanwhile are skipped."""
    overrides = ["workload.training.jobs=40"]
    plain = dcsim.run(SCENARIOS / "fat_tree_placement.yaml", overrides=overrides)
    failing_tier = dcsim.run(SCENARIOS / "fat_tree_placement.yaml", overrides=[
        *overrides, "failures.storage.mtbf=8h", "failures.storage.causes={controller: {share: 1.0, repair: 1h}}"])
    rows = failing_tier.failures
    assert (rows["component"] == "storage").sum() >= 1 and (rows["node"] == "pfs").all()
    jobs = failing_tier.jobs
    assert (jobs["state"] == "completed").all() and jobs["interruptions"].sum() == 0
    assert jobs["io_time_s"].sum() > plain.jobs["io_time_s"].sum() + 3600 * 0.5
    assert failing_tier.summary["training"]["makespan_s"] >= plain.summary["training"]["makespan_s"]


def test_storage_failures_need_a_shared_tier(tmp_path: Path) -> None:
    found = problems(write(tmp_path, tiny_scenario(failures={"storage": {"mtbf": "10h"}})))
    assert len(found) == 1 and "failures.storage" in found[0] and "storage section" in found[0]


@pytest.mark.parametrize("power", ["none", "budget"])
def test_a_replica_lost_while_busy_stops_drawing_power(power: str) -> None:
    # Node failures take busy Llama-2-70B replicas down. Before the fix the lost replica's draw above idle
    # stayed in the cluster's levels for good: at the end, with nothing busy, the accelerators showed
    # 12.6 kW, and a 12 kW budget reported 2,459 s over it while the governor saw no need to cap.
    data = {"name": "lost", "seed": 4, "horizon": "1h",
            "cluster": {"node_pools": [{"name": "h", "count": 3, "accelerator": "H100", "accelerators_per_node": 8,
                                        "host_power": {"idle": "500W", "busy": "900W"}}]},
            "workload": {"inference": {"services": [{
                "name": "chat", "model": "Llama-2-70B",
                "replicas": [{"accelerator": "H100", "tensor_parallel": 8, "count": 2}],
                "requests": {"source": "synthetic", "count": 6000, "arrival": {"process": "poisson", "rate": "2/s"},
                             "prompt_tokens": {"distribution": "lognormal", "median": 1000, "sigma": 0.5, "max": 3000},
                             "output_tokens": {"distribution": "lognormal", "median": 200, "sigma": 0.5,
                                               "max": 800}}}]}},
            "failures": {"node": {"mtbf": "20min", "causes": {"failure": {"share": 1.0, "repair": "10min"}}}},
            "policies": {"power": "none" if power == "none" else {"name": "budget", "params": {"budget": "12kW"}}}}
    result = dcsim.run(scenario_from_dict(data))
    assert result.summary["failures"]["serving"]["replicas_lost"] > 0
    ts = result.timeseries
    # whenever no replica is busy, the accelerators draw their idle power: one figure, 24 H100 at idle
    quiet = ts[ts["serving_busy_all"] == 0]
    assert len(quiet) and np.allclose(quiet["power_accelerators_w"], quiet["power_accelerators_w"].min())
    assert quiet["power_accelerators_w"].max() < 24 * 100.0
    if power == "budget":
        assert result.summary["power"]["over_budget_s"] == 0.0
