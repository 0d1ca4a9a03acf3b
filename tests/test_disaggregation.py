"""Disaggregated prefill and decode (issue 16): hand-computed timelines with the KV transfer from bytes over
bandwidth, conservation, Little's law per pool, and KV transfers sharing the fabric with training."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import dcsim
from dcsim.calibration import load_calibration
from dcsim.calibration.inference import kv_bytes_per_token
from dcsim.catalog import load_catalog
from dcsim.errors import DcsimError
from dcsim.scenario import scenario_from_dict

MODEL, ACCELERATOR, TP = "Llama-2-70B", "H100", 8
KV_BW = 10e9  # bytes/s per node NIC, set in the scenarios below


def pools(prefill: int = 1, decode: int = 1, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "chat", "model": MODEL,
        "prefill": {"replicas": [{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": prefill}]},
        "decode": {"replicas": [{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": decode}]},
        "kv_transfer": {"bandwidth": KV_BW},
    }
    data.update(changes)
    return data


def scenario(service: dict[str, Any], nodes: int = 2, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "disagg", "seed": 3,
        "cluster": {"node_pools": [{"name": "h100", "count": nodes, "accelerator": ACCELERATOR,
                                    "accelerators_per_node": 8}]},
        "workload": {"inference": {"services": [service]}},
    }
    data.update(changes)
    return data


def trace(tmp_path: Path, rows: list[tuple[float, int, int]]) -> dict[str, Any]:
    path = tmp_path / "requests.csv"
    path.write_text("arrival,prompt_tokens,output_tokens\n" + "".join(f"{a},{p},{o}\n" for a, p, o in rows))
    return {"source": "trace", "path": str(path)}


def synthetic(count: int, rate: str) -> dict[str, Any]:
    return {"source": "synthetic", "count": count, "arrival": {"process": "poisson", "rate": rate},
            "prompt_tokens": {"distribution": "lognormal", "median": 800, "sigma": 0.8, "max": 3000},
            "output_tokens": {"distribution": "lognormal", "median": 150, "sigma": 0.8, "max": 1000}}


def run(data: dict[str, Any]) -> dcsim.RunResult:
    return dcsim.run(scenario_from_dict(copy.deepcopy(data), "disagg.yaml"))


def per_token() -> float:
    return kv_bytes_per_token(load_catalog().model(MODEL))


def prefill(tokens: float) -> float:
    return load_calibration().inference.prefill_time(load_catalog().model(MODEL), ACCELERATOR, tokens, 1, TP)


def decode(batch: int, context: float) -> float:
    return load_calibration().inference.decode_time(load_catalog().model(MODEL), ACCELERATOR, batch, context, TP)


# --- hand-computed timelines ---------------------------------------------------------------------------


def test_a_lone_request_prefills_moves_its_kv_cache_then_decodes(tmp_path: Path) -> None:
    prompt, output = 2000, 40
    result = run(scenario(pools(requests=trace(tmp_path, [(0.0, prompt, output)]))))
    row = result.requests.iloc[0]
    # Llama-2-70B: 80 layers x 8 KV heads x 128 dims x K and V x 2 bytes = 327,680 bytes per token.
    assert per_token() == 80 * 8 * 128 * 2 * 2
    transfer = prompt * per_token() / KV_BW  # replicas on two nodes: over the prefill node's NIC
    iterations = [decode(1, prompt + i) for i in range(output - 1)]
    assert row["ttft_s"] == pytest.approx(prefill(prompt), rel=1e-12)  # the first token: from the prefill
    assert row["e2e_s"] == pytest.approx(prefill(prompt) + transfer + sum(iterations), rel=1e-12)
    assert row["tpot_s"] == pytest.approx((transfer + sum(iterations)) / (output - 1), rel=1e-12)
    moved = result.kv_transfers.iloc[0]
    assert moved["bytes"] == prompt * per_token()
    assert moved["start_s"] == pytest.approx(prefill(prompt), rel=1e-12)
    assert moved["transfer_s"] == pytest.approx(transfer, rel=1e-9)
    assert (moved["prefill_replica"], moved["decode_replica"]) == (0, 1)
    assert row["replica"] == 1  # its last replica: the decode one
    section = result.summary["inference"]["services"]["chat"]["disaggregation"]
    assert section["kv_transfer_bytes"] == prompt * per_token() and section["kv_transfers"] == 1


def test_transfers_from_one_node_queue_on_its_nic(tmp_path: Path) -> None:
    prompt, output = 1000, 5
    result = run(scenario(pools(requests=trace(tmp_path, [(0.0, prompt, output), (0.0, prompt, output)]))))
    moved = result.kv_transfers.sort_values("end_s")
    size = prompt * per_token()
    start = moved["start_s"].iloc[0]  # both prefilled in one iteration, handed off together
    assert moved["start_s"].iloc[1] == start
    assert list(moved["end_s"] - start) == pytest.approx([size / KV_BW, 2 * size / KV_BW], rel=1e-9)


def test_replicas_on_one_node_copy_at_the_local_bandwidth(tmp_path: Path) -> None:
    prompt = 1500
    service = pools(requests=trace(tmp_path, [(0.0, prompt, 10)]))
    for pool in ("prefill", "decode"):
        service[pool]["replicas"][0]["tensor_parallel"] = 4  # both fit on the one node
    service["kv_transfer"]["local_bandwidth"] = 200e9
    result = run(scenario(service, nodes=1))
    assert result.kv_transfers.iloc[0]["transfer_s"] == pytest.approx(prompt * per_token() / 200e9, rel=1e-9)


# --- conservation and queueing identities --------------------------------------------------------------


def test_every_request_ends_in_one_state_with_autoscaled_pools() -> None:
    service = pools(requests=synthetic(1500, "6/s"))
    service["prefill"]["replicas"][0].update(count=1, max_count=2)
    service["decode"]["replicas"][0].update(count=1, max_count=2)
    data = scenario(service, nodes=4, policies={"autoscaler": {"name": "queue_target", "target_outstanding": 8}})
    result = run(data)
    requests = result.requests
    assert set(requests["state"]) <= {"completed", "rejected"}
    counts = requests["state"].value_counts()
    summary = result.summary["inference"]
    assert summary["completed"] + summary["dropped"] + summary["unfinished"] == len(requests) == 1500 - sum(
        summary["services"]["chat"]["workload"].get("skipped", {}).values())
    completed = requests[requests["state"] == "completed"]
    # Every completed request with more than one output token went through exactly one KV transfer.
    moved = result.kv_transfers
    assert sorted(moved["request_id"]) == sorted(completed.loc[completed["output_tokens"] > 1, "request_id"])
    assert counts["completed"] == len(completed)
    decode_ids = set(result.pools.loc[result.pools["pool"] == "decode", "replica_id"])
    prefill_ids = set(result.pools.loc[result.pools["pool"] == "prefill", "replica_id"])
    assert set(moved["decode_replica"]) <= decode_ids and set(moved["prefill_replica"]) <= prefill_ids
    assert (moved["end_s"] >= moved["start_s"]).all()
    assert (completed["first_token_s"] <= completed["end_s"]).all()


def test_fast_forward_gives_the_per_iteration_results_with_pools() -> None:
    """Transferred requests join decoding at iteration boundaries: the closed-form decode clock and one
    event per iteration give the same request times."""
    data = scenario(pools(prefill=1, decode=2, requests=synthetic(400, "6/s")), nodes=3)
    fast = run(data)
    data["workload"]["inference"]["fast_forward"] = False
    slow = run(data)
    columns = ["first_token_s", "end_s", "replica", "preemptions"]
    np.testing.assert_allclose(fast.requests[columns].to_numpy(dtype=float),
                               slow.requests[columns].to_numpy(dtype=float), rtol=1e-9)
    assert fast.summary["events"] < slow.summary["events"]


def _in_system(ts: pd.DataFrame, ids: set[int]) -> float:
    """Time integral of requests waiting or in a batch at these replicas (levels hold until the next row)."""
    total = 0.0
    for _, rows in ts[ts["replica_id"].isin(ids)].groupby("replica_id"):
        times = rows["time_s"].to_numpy()
        level = (rows["batch"] + rows["waiting"]).to_numpy()
        total += float(np.dot(level[:-1], np.diff(times)))
    return total


def test_littles_law_holds_in_each_pool() -> None:
    result = run(scenario(pools(prefill=1, decode=2, requests=synthetic(3000, "5/s")), nodes=3))
    requests = result.requests.set_index("request_id")
    assert (requests["state"] == "completed").all()
    ts = result.replica_timeseries.sort_values(["replica_id", "time_s"], kind="stable")
    horizon = result.summary["sim_time_s"]
    pool_of = result.pools
    moved = result.kv_transfers.set_index("request_id")
    # Prefill pool: a request is there from its arrival (replicas always ready) to its first token.
    prefill_ids = set(pool_of.loc[pool_of["pool"] == "prefill", "replica_id"])
    time_in_prefill = (requests["first_token_s"] - requests["arrival_s"]).to_numpy()
    assert _in_system(ts, prefill_ids) / horizon == pytest.approx(
        len(requests) / horizon * time_in_prefill.mean(), rel=0.01)
    # Decode pool: from its KV cache's arrival to its end.
    decode_ids = set(pool_of.loc[pool_of["pool"] == "decode", "replica_id"])
    time_in_decode = (requests.loc[moved.index, "end_s"] - moved["end_s"]).to_numpy()
    assert _in_system(ts, decode_ids) / horizon == pytest.approx(
        len(moved) / horizon * time_in_decode.mean(), rel=0.01)


def test_goodput_counts_requests_meeting_both_targets() -> None:
    service = pools(requests=synthetic(800, "4/s"), slo={"ttft": 0.5, "tpot": 0.05})
    result = run(scenario(service))
    met = (result.requests["slo_met"] == 1.0).sum()
    section = result.summary["inference"]["services"]["chat"]["disaggregation"]
    assert 0 < met <= len(result.requests)
    assert section["goodput_rps"] == pytest.approx(met / result.summary["sim_time_s"], rel=1e-9)
    pools_summary = section["pools"]
    assert 0 < pools_summary["prefill"]["busy_fraction"] < pools_summary["decode"]["busy_fraction"] <= 1


def test_a_mixed_pool_is_a_configuration_its_replicas_decode_what_they_prefill() -> None:
    """Splitwise's mixed pool: replicas beside the prefill pool take arrivals and decode them themselves."""
    service = pools(requests=synthetic(600, "4/s"), mixed={"replicas": [{"accelerator": ACCELERATOR,
                                                                          "tensor_parallel": TP}]})
    result = run(scenario(service, nodes=3, policies={"balancer": "round_robin"}))
    requests = result.requests
    assert (requests["state"] == "completed").all()
    pool = result.pools.set_index("replica_id")["pool"]
    assert sorted(pool) == ["decode", "mixed", "prefill"]
    on_mixed = requests[requests["replica"].map(pool) == "mixed"]
    moved = set(result.kv_transfers["request_id"])
    assert len(on_mixed) > 100 and not moved & set(on_mixed["request_id"])  # no transfer for them
    decoded = requests[requests["replica"].map(pool) == "decode"]
    assert set(decoded["request_id"]) == moved  # the others' KV caches moved, once each
    ended_at_prefill = requests[requests["replica"].map(pool) == "prefill"]
    assert (ended_at_prefill["output_tokens"] == 1).all()  # only one-token requests end there
    summary = result.summary["inference"]["services"]["chat"]["disaggregation"]["pools"]
    assert set(summary) == {"prefill", "decode", "mixed"}
    assert summary["mixed"]["requests_served"] == len(on_mixed)


# --- sharing the fabric with training ------------------------------------------------------------------

HB = 25e9  # host link bytes/s


def fabric_scenario(tmp_path: Path, training: bool) -> dict[str, Any]:
    """Hosts in order s1, t1, s2, t2: leaf 0 holds s1 and t1, leaf 1 holds s2 and t2, one spine; each leaf's
    uplink is one host link (oversubscription 2). The prefill replica is on s1 and the decode one on s2;
    the training job's ring between t1 and t2 crosses the same two uplinks."""
    def pool(name: str, accelerator: str) -> dict[str, Any]:
        return {"name": name, "count": 1, "accelerator": accelerator, "accelerators_per_node": 8}

    data = scenario(pools(requests=trace(tmp_path, [(0.0, 3000, 20)])),
                    network={"topology": "leaf_spine", "host_bandwidth": HB, "hosts_per_leaf": 2, "spines": 1,
                             "oversubscription": 2.0})
    data["cluster"] = {"node_pools": [pool("s1", "H100"), pool("t1", "A100-80GB"), pool("s2", "H100"),
                                      pool("t2", "A100-80GB")]}
    if training:
        data["workload"]["training"] = {
            "source": "synthetic", "jobs": 1, "arrival": {"process": "constant", "rate": 1e6},
            "reference_accelerator": "A100-80GB", "accelerators": {"values": [16]},
            "duration": {"distribution": "constant", "value": 3600.0},
            "communication": {"parameters": 20e9, "step_time": 0.2}}
    return data


def test_a_kv_transfer_is_slower_when_training_traffic_shares_its_links(tmp_path: Path) -> None:
    alone = run(fabric_scenario(tmp_path, training=False))
    shared = run(fabric_scenario(tmp_path, training=True))
    job = shared.jobs.iloc[0]  # on t1 and t2, sending its ring over the uplinks the transfer needs
    assert (job["accelerator_model"], job["nodes"], job["start_s"] < 1.0) == ("A100-80GB", 2, True)
    size = 3000 * per_token()
    quiet = alone.kv_transfers.iloc[0]["transfer_s"]
    # Alone: bytes over the host link (the path's 4 hops add their latency, 1 microsecond by default each).
    assert quiet == pytest.approx(size / HB, rel=1e-3)
    busy = shared.kv_transfers.iloc[0]["transfer_s"]
    assert busy > 1.5 * quiet  # the ring's streams take their max-min fair share of both uplinks
    assert busy == pytest.approx(2 * size / HB, rel=1e-3)


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.pop("prefill"), r"services\.0: decode: a decode pool needs a prefill pool"),
    (lambda s: s.pop("decode"), r"prefill: a prefill pool needs a decode pool"),
    (lambda s: s.update(replicas=[{"accelerator": ACCELERATOR}]), r"replicas: give replicas .* not both"),
    (lambda s: s["decode"].update(balancer={"name": "no_such_balancer"}), r"decode\.balancer"),
    (lambda s: s["prefill"]["replicas"][0].update(accelerator="TPU-v9"), r"prefill\.replicas\.0\.accelerator"),
])
def test_bad_pools_fail_in_one_line(tmp_path: Path, change: Any, message: str) -> None:
    service = pools(requests=trace(tmp_path, [(0.0, 10, 10)]))
    change(service)
    with pytest.raises(DcsimError, match=message):
        run(scenario(service))


def test_the_cli_exits_2_and_writes_nothing_for_a_decode_pool_without_prefill(tmp_path: Path) -> None:
    service = pools(requests=trace(tmp_path, [(0.0, 10, 10)]))
    service.pop("prefill")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(scenario(service)))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "dcsim", "run", str(path), "-o", str(out)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "decode pool needs a prefill pool" in lines[0] and "bad.yaml" in lines[0]
    assert not out.exists()


def test_lost_pool_replicas_retry_their_requests_and_every_request_ends_once() -> None:
    """Node failures hit both pools: requests of a lost decode replica (decoding, or with their KV cache
    just arrived or still on the way) are recomputed on another decode replica; every request ends once."""
    service = pools(requests=synthetic(4000, "2/s"))
    data = scenario(service, nodes=4, horizon="40min",
                    failures={"node": {"mtbf": "30min"}, "request_retries": 3})
    result = run(data)
    serving = result.summary["failures"]["serving"]
    assert serving["replicas_lost"] > 0 and serving["requests_retried"] > 0
    requests = result.requests
    assert requests["request_id"].is_unique
    assert requests["state"].isin(["completed", "rejected", "unfinished"]).all()
    counts = result.summary["inference"]
    assert counts["completed"] + counts["dropped"] + counts["unfinished"] == counts["requests"]
    done = requests[requests["state"] == "completed"]
    assert (done["end_s"] >= done["first_token_s"]).all()
    lost = result.pools.merge(result.replicas, on="replica_id")
    assert lost["stopped_s"].notna().any()  # a pool replica was lost and replaced


# --- report -----------------------------------------------------------------------------------------------


def test_the_report_draws_the_pools_chart_from_saved_results(tmp_path: Path) -> None:
    from dcsim.reporting import write_report
    from dcsim.results import RunResult

    result = run(scenario(pools(requests=synthetic(200, "4/s"))))
    result.save(tmp_path / "run")
    reloaded = RunResult.load(tmp_path / "run")
    assert reloaded.kv_transfers is not None and len(reloaded.kv_transfers) == len(result.kv_transfers)
    (tmp_path / "report").mkdir()
    paths = write_report(reloaded, tmp_path / "report")
    assert not paths.failures
    names = {path.name for path in paths}
    assert "disaggregated_pools.png" in names and "latency_cdf.png" in names
    assert "the CDF of KV-cache transfer times" in (tmp_path / "report" / "report.html").read_text()  # its caption


def test_pool_levels_sum_the_replicas_levels_by_hand() -> None:
    from dcsim.reporting.disaggregation_charts import pool_levels

    ts = pd.DataFrame({"time_s": [0.0, 1.0, 1.0, 2.0, 3.0], "replica_id": [0, 1, 0, 1, 9],
                       "batch": [2, 1, 0, 4, 7], "waiting": [1, 0, 0, 1, 7]})
    times, levels = pool_levels(ts, {0, 1}, 5.0)
    # t=0: replica 0 holds 3; t=1: replica 1 holds 1 and replica 0 drops to 0; t=2: replica 1 holds 5.
    assert list(times) == [0.0, 1.0, 2.0, 5.0] and list(levels) == [3.0, 1.0, 5.0, 5.0]


def test_a_disaggregated_run_without_a_network_loads_neither_numba_nor_networkx(tmp_path: Path) -> None:
    """KV transfers over NICs need no flow solver: the fabric (numba) and topology (networkx) stay unloaded."""
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump(scenario(pools(requests=synthetic(50, "4/s")))))
    code = ("import sys, dcsim; dcsim.run(sys.argv[1]); "
            "print(sorted(m for m in ('numba', 'networkx') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
