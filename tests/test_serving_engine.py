"""The serving engine against hand-computed cases, queueing identities, and its own per-iteration mode."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dcsim
from dcsim.calibration import load_calibration
from dcsim.catalog import load_catalog
from dcsim.errors import DcsimError, PolicyError, ScenarioError
from dcsim.results import RunResult
from dcsim.scenario import scenario_from_dict

MODEL, ACCELERATOR, TP = "Llama-2-70B", "H100", 4


def service(requests: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "chat", "model": MODEL,
                            "replicas": [{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 1}],
                            "requests": requests}
    data.update(changes)
    return data


def scenario(services: list[dict[str, Any]], nodes: int = 1, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "serving-test", "seed": 5,
        "cluster": {"node_pools": [{"name": "h100", "count": nodes, "accelerator": ACCELERATOR,
                                    "accelerators_per_node": 8}]},
        "workload": {"inference": {"services": services}},
    }
    data.update(changes)
    return data


def synthetic(count: int, rate: str, prompt: dict[str, Any], output: dict[str, Any],
              process: str = "poisson") -> dict[str, Any]:
    return {"source": "synthetic", "count": count, "arrival": {"process": process, "rate": rate},
            "prompt_tokens": prompt, "output_tokens": output}


def constant(value: int) -> dict[str, Any]:
    return {"distribution": "constant", "value": value}


def lognormal(median: float, sigma: float, most: int) -> dict[str, Any]:
    return {"distribution": "lognormal", "median": median, "sigma": sigma, "max": most}


def trace_requests(tmp_path: Any, rows: list[tuple[float, int, int]]) -> dict[str, Any]:
    path = tmp_path / "requests.csv"
    path.write_text("arrival,prompt_tokens,output_tokens\n" + "".join(f"{a},{p},{o}\n" for a, p, o in rows))
    return {"source": "trace", "path": str(path)}


def run(data: dict[str, Any], **kwargs: Any) -> RunResult:
    return dcsim.run(scenario_from_dict(data, "test.yaml"), **kwargs)


def timing() -> Any:
    catalog = load_catalog()
    return load_calibration().inference.iteration_constants(catalog.model(MODEL), ACCELERATOR, TP)


def prefill(tokens: float) -> float:
    catalog = load_catalog()
    return load_calibration().inference.prefill_time(catalog.model(MODEL), ACCELERATOR, tokens, 1, TP)


def decode(batch: int, context: float) -> float:
    catalog = load_catalog()
    return load_calibration().inference.decode_time(catalog.model(MODEL), ACCELERATOR, batch, context, TP)


# --- hand-computed cases -----------------------------------------------------------------------------


def test_a_lone_request_takes_its_prefill_then_one_decode_per_token(tmp_path: Any) -> None:
    prompt, output = 700, 50
    result = run(scenario([service(trace_requests(tmp_path, [(0.0, prompt, output)]))]))
    row = result.requests.iloc[0]
    # Decode iteration i attends prompt + i tokens: the mean iteration is at the mean context.
    iterations = [decode(1, prompt + i) for i in range(output - 1)]
    assert row["ttft_s"] == pytest.approx(prefill(prompt), rel=1e-12)
    assert row["tpot_s"] == pytest.approx(np.mean(iterations), rel=1e-12)
    assert row["tpot_s"] == pytest.approx(decode(1, prompt + (output - 2) / 2), rel=1e-12)
    assert row["e2e_s"] == pytest.approx(prefill(prompt) + sum(iterations), rel=1e-12)
    assert row["queue_delay_s"] == 0.0 and row["preemptions"] == 0


def test_two_requests_prefill_together_then_decode_as_a_batch(tmp_path: Any) -> None:
    k = timing()
    (p1, o1), (p2, o2) = (300, 4), (500, 6)
    result = run(scenario([service(trace_requests(tmp_path, [(0.0, p1, o1), (0.0, p2, o2)]))]))
    prefill_both = k.prefill_fixed + sum(k.prefill_token * p + k.prefill_token_sq * p * p for p in (p1, p2))
    # Both decode until the first has its 4 tokens (3 iterations), then the second alone for 2 more.
    t = prefill_both
    for i in range(o1 - 1):
        t += decode(2, p1 + p2 + 2 * i)
    end1 = t
    for i in range(o1 - 1, o2 - 1):
        t += decode(1, p2 + i)
    frame = result.requests.set_index("prompt_tokens")
    assert frame.loc[p1, "ttft_s"] == pytest.approx(prefill_both, rel=1e-12)
    assert frame.loc[p2, "ttft_s"] == pytest.approx(prefill_both, rel=1e-12)
    assert frame.loc[p1, "e2e_s"] == pytest.approx(end1, rel=1e-12)
    assert frame.loc[p2, "e2e_s"] == pytest.approx(t, rel=1e-12)
    assert result.summary["inference"]["tokens_per_s"] == pytest.approx((o1 + o2) / t, rel=1e-9)


def test_an_arrival_during_decoding_is_prefilled_at_the_next_iteration_boundary(tmp_path: Any) -> None:
    p1, o1, p2, o2 = 400, 40, 200, 3
    first_prefill = prefill(p1)
    boundaries = np.cumsum([first_prefill] + [decode(1, p1 + i) for i in range(o1 - 1)])
    arrival = (boundaries[5] + boundaries[6]) / 2  # halfway through the 6th decode iteration
    result = run(scenario([service(trace_requests(tmp_path, [(0.0, p1, o1), (arrival, p2, o2)]))]))
    second = result.requests.set_index("prompt_tokens").loc[p2]
    assert second["admitted_s"] == pytest.approx(boundaries[6], rel=1e-12)
    assert second["first_token_s"] == pytest.approx(boundaries[6] + prefill(p2), rel=1e-12)


def test_chunked_prefill_splits_a_long_prompt_into_budgeted_iterations(tmp_path: Any) -> None:
    k = timing()
    prompt, budget = 1300, 512
    data = scenario([service(trace_requests(tmp_path, [(0.0, prompt, 2)]))],
                    policies={"replica_scheduler": {"name": "chunked_prefill", "token_budget": budget}})
    row = run(data).requests.iloc[0]
    chunks = math.ceil(prompt / budget)  # every chunk pays the fixed cost; tokens and attention add up to one prefill
    expected = chunks * k.prefill_fixed + k.prefill_token * prompt + k.prefill_token_sq * prompt**2
    assert row["ttft_s"] == pytest.approx(expected, rel=1e-12)


def test_static_batching_holds_new_requests_until_the_batch_finishes(tmp_path: Any) -> None:
    rows = [(0.0, 300, 30), (0.05, 300, 5)]
    data = scenario([service(trace_requests(tmp_path, rows))], policies={"replica_scheduler": "static_batching"})
    frame = run(data).requests.set_index("output_tokens")
    assert frame.loc[5, "admitted_s"] == pytest.approx(frame.loc[30, "end_s"], rel=1e-12)
    continuous = run(scenario([service(trace_requests(tmp_path, rows))])).requests.set_index("output_tokens")
    assert continuous.loc[5, "admitted_s"] < frame.loc[5, "admitted_s"]


# --- KV cache -------------------------------------------------------------------------------------------


def kv_bytes(tokens: int) -> str:
    from dcsim.calibration.inference import kv_bytes_per_token

    return f"{kv_bytes_per_token(load_catalog().model(MODEL)) * tokens:.0f}"


def test_requests_longer_than_the_kv_cache_are_rejected_and_counted(tmp_path: Any) -> None:
    rows = [(0.0, 900, 200), (0.1, 300, 50)]
    result = run(scenario([service(trace_requests(tmp_path, rows), kv_cache=kv_bytes(1000))]))
    assert int(result.replicas["kv_capacity_tokens"].iloc[0]) == 1000
    inference = result.summary["inference"]
    assert (inference["requests"], inference["completed"], inference["dropped"]) == (2, 1, 1)
    assert inference["rejected_by_reason"] == {"longer than the KV cache can hold": 1}
    rejected = result.requests[result.requests["state"] == "rejected"]
    assert rejected["prompt_tokens"].tolist() == [900] and rejected["replica"].tolist() == [-1]


def test_a_full_kv_cache_preempts_and_recomputes(tmp_path: Any) -> None:
    rows = [(0.0, 400, 300), (0.0, 400, 300), (0.0, 400, 300)]
    data = scenario([service(trace_requests(tmp_path, rows), kv_cache=kv_bytes(1500))])
    result = run(data)
    requests = result.requests
    assert int(result.replicas["kv_capacity_tokens"].iloc[0]) == 1500
    assert (requests["state"] == "completed").all()
    assert result.summary["inference"]["preemptions"] == requests["preemptions"].sum() > 0
    assert result.replica_timeseries["kv_used_tokens"].max() <= 1500


# --- fast-forward equals per-iteration ----------------------------------------------------------------


@pytest.mark.parametrize("scheduler", ["continuous_batching", "chunked_prefill", "static_batching"])
def test_fast_forward_gives_the_per_iteration_results(scheduler: str) -> None:
    requests = synthetic(400, "14/s", lognormal(600, 0.8, 3000), lognormal(150, 0.8, 1500))
    services = [service(requests, kv_cache="6GB",
                        replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 2}])]
    data = scenario(services, policies={"replica_scheduler": scheduler, "balancer": "least_tokens"})
    fast = run(data)
    data["workload"]["inference"]["fast_forward"] = False
    slow = run(data)
    # At least 2.5x fewer events (the bound was 3x). Chunked prefill went from 3.03x (2,038 of 6,168) to
    # 3.00x (2,023 of 6,067) when issue 15 bounded the decode coefficients and left out requests beyond
    # Llama-2-70B's context; continuous batching is at 4.0x, static batching 9.9x.
    assert fast.summary["events"] < slow.summary["events"] / 2.5
    assert fast.summary["inference"]["preemptions"] == slow.summary["inference"]["preemptions"] > 0
    for column in ("admitted_s", "first_token_s", "end_s"):
        np.testing.assert_allclose(fast.requests[column], slow.requests[column], rtol=1e-9)
    assert (fast.requests["replica"] == slow.requests["replica"]).all()
    assert fast.summary["energy"]["it_kwh"] == pytest.approx(slow.summary["energy"]["it_kwh"], rel=1e-9)


# --- queueing identities and energy ---------------------------------------------------------------------


def test_littles_law_on_requests() -> None:
    requests = synthetic(3000, "9/s", lognormal(500, 0.7, 4000), lognormal(120, 0.7, 1000))
    services = [service(requests, replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 2}])]
    result = run(scenario(services))
    frame = result.requests
    assert (frame["state"] == "completed").all()
    # L from the replicas' own levels (requests waiting or in a batch, time-weighted) ...
    ts = result.replica_timeseries.sort_values(["replica_id", "time_s"], kind="stable")
    in_system = 0.0
    for _, rows in ts.groupby("replica_id"):
        times = rows["time_s"].to_numpy()
        level = (rows["batch"] + rows["waiting"]).to_numpy()
        in_system += float(np.dot(level[:-1], np.diff(times)))
    horizon = result.summary["sim_time_s"]
    mean_in_system = in_system / horizon
    # ... equals arrival rate x mean time in system, from the request records.
    lam = len(frame) / horizon
    assert mean_in_system == pytest.approx(lam * frame["e2e_s"].mean(), rel=0.01)


def test_serving_energy_adds_up_to_the_accelerator_energy() -> None:
    requests = synthetic(500, "6/s", lognormal(500, 0.7, 4000), lognormal(120, 0.7, 1000))
    result = run(scenario([service(requests)]))
    idle_per_gpu = load_catalog().accelerators["H100-SXM"].idle_w.value
    free = 8 - TP
    expected_kwh = (result.replicas["energy_j"].sum() + free * idle_per_gpu * result.summary["sim_time_s"]) / 3.6e6
    assert result.summary["energy"]["by_component_kwh"]["accelerators"] == pytest.approx(expected_kwh, rel=1e-6)
    inference = result.summary["inference"]
    assert inference["energy_per_output_token_j"] == pytest.approx(
        result.replicas["energy_j"].sum() / result.requests["output_tokens"].sum(), rel=1e-6)


# --- replica busy fraction: the share of capacity in use --------------------------------------------------


def lone_request_busy_fraction(tmp_path: Any, prompt: int, output: int, horizon: float,
                               **changes: Any) -> tuple[RunResult, float]:
    """One replica, one request at t=0, a horizon: the run and the request's service time by hand."""
    result = run(scenario([service(trace_requests(tmp_path, [(0.0, prompt, output)]), **changes)], horizon=horizon))
    served = prefill(prompt) + sum(decode(1, prompt + i) for i in range(output - 1))
    assert result.requests["e2e_s"].iloc[0] == pytest.approx(served, rel=1e-12)
    return result, served


def test_a_lone_request_fills_a_one_slot_replica_for_its_service_time(tmp_path: Any) -> None:
    """max_batch 1: the request is the whole capacity while it runs, so the fraction is service time / horizon."""
    result, served = lone_request_busy_fraction(tmp_path, 700, 50, 100.0, max_batch=1)
    assert result.summary["inference"]["replica_busy_fraction"] == pytest.approx(served / 100.0, rel=1e-9)
    assert result.replicas["busy_s"].iloc[0] == pytest.approx(served, rel=1e-9)


def test_a_lone_request_in_four_slots_is_a_quarter_of_the_capacity(tmp_path: Any) -> None:
    result, served = lone_request_busy_fraction(tmp_path, 700, 50, 100.0, max_batch=4)
    assert result.summary["inference"]["replica_busy_fraction"] == pytest.approx(served / 4 / 100.0, rel=1e-9)


def test_a_long_prompt_counts_by_its_share_of_the_kv_cache(tmp_path: Any) -> None:
    """With 256 slots, a 3,000-token prompt holds more of the KV cache (3,000 to 3,049 tokens of the
    capacity) than of the batch (1/256), so the KV share is what the fraction counts."""
    prompt, output, horizon = 3000, 50, 100.0
    result, served = lone_request_busy_fraction(tmp_path, prompt, output, horizon, max_batch=256)
    capacity = int(result.replicas["kv_capacity_tokens"].iloc[0])
    assert prompt / capacity > 1 / 256
    fraction = result.summary["inference"]["replica_busy_fraction"]
    assert served * prompt / capacity / horizon * (1 - 1e-9) <= fraction
    assert fraction <= served * (prompt + output - 1) / capacity / horizon * (1 + 1e-9)


def test_an_over_provisioned_fleet_reads_low_though_its_replicas_are_never_empty() -> None:
    """Four replicas at 2 requests/s keep a request or two each nearly all the time (they iterate 95% of
    the time) but use a few of their 256 slots: the fraction must say the fleet is far from busy."""
    requests = synthetic(600, "2/s", lognormal(500, 0.8, 3000), lognormal(150, 1.0, 1000))
    group = [{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 4}]
    result = run(scenario([service(requests, replicas=group)], nodes=2))
    replicas, end = result.replicas, result.summary["sim_time_s"]
    ready_s = float((replicas["stopped_s"].fillna(end) - replicas["ready_s"]).sum())
    assert replicas["busy_s"].sum() / ready_s > 0.9
    assert result.summary["inference"]["ttft_s"]["p99"] < 1.0  # nothing waits: capacity to spare
    assert result.summary["inference"]["replica_busy_fraction"] < 0.05
    assert (replicas["occupied_s"] <= replicas["busy_s"] * (1 + 1e-12)).all()


def test_a_saturated_replica_reads_near_one(tmp_path: Any) -> None:
    """2,000 equal requests in the first second on one replica: a queue waits at it until the horizon.
    Its 256 slots fill and empty together, and each refill takes 7 prefill iterations of 40 prompts
    (max_prefill_tokens 4,096) with a partly filled batch: those count as fully busy because requests
    wait behind them (by batch share alone they would read 0.85)."""
    rows = [(i / 2000, 100, 50) for i in range(2000)]
    result = run(scenario([service(trace_requests(tmp_path, rows))], horizon=30.0))
    assert (result.requests["state"] == "unfinished").sum() > 500  # still a backlog at the horizon
    assert result.replica_timeseries["batch"].min() < 256 / 2  # the refills
    assert result.summary["inference"]["replica_busy_fraction"] > 0.99


def test_same_seed_same_results() -> None:
    requests = synthetic(300, "8/s", lognormal(500, 0.7, 4000), lognormal(120, 0.7, 1000))
    data = scenario([service(requests)], policies={"balancer": "power_of_two_choices"})
    data["workload"]["inference"]["services"][0]["replicas"][0]["count"] = 2
    first, second = run(data), run(data)
    first.summary.pop("wall_time_s")
    second.summary.pop("wall_time_s")
    assert first.summary == second.summary
    pd.testing.assert_frame_equal(first.requests, second.requests)


# --- balancers under load --------------------------------------------------------------------------------


def test_least_outstanding_requests_beats_random_on_p99_latency() -> None:
    # Eight Llama-2-13B replicas of at most 8 requests each, kept about 97% busy: random routing leaves
    # some replicas with a queue while others have free batch slots; joining the least loaded does not.
    requests = synthetic(3000, "9/s", lognormal(600, 0.9, 4000), lognormal(150, 1.2, 2000))
    services = [service(requests, model="Llama-2-13B", max_batch=8,
                        replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": 1, "count": 8}])]
    p99: dict[str, dict[str, float]] = {}
    for balancer in ("random", "least_outstanding_requests"):
        runs = [run({**scenario(services), "policies": {"balancer": balancer}}, seed=seed).summary["inference"]
                for seed in (1, 2, 3)]
        p99[balancer] = {key: float(np.mean([r[key]["p99"] for r in runs])) for key in ("ttft_s", "e2e_s")}
    lor, rnd = p99["least_outstanding_requests"], p99["random"]
    assert lor["ttft_s"] < 0.25 * rnd["ttft_s"], p99  # measured: 0.86 s against 14.1 s
    assert lor["e2e_s"] < rnd["e2e_s"], p99  # 37.0 s against 39.1 s: output length dominates end to end


# --- sharing the cluster with training --------------------------------------------------------------------


def test_replicas_and_training_jobs_share_the_accelerators() -> None:
    requests = synthetic(200, "2/s", lognormal(500, 0.7, 4000), lognormal(120, 0.7, 1000))
    data = scenario([service(requests)])
    data["workload"]["training"] = {
        "source": "synthetic", "jobs": 6, "arrival": {"process": "poisson", "rate": "60/h"},
        "accelerators": {"values": [4, 8], "weights": [1, 1]},
        "duration": {"distribution": "constant", "value": "10min"}}
    result = run(data, seed=2)
    assert (result.timeseries["allocated_all"] <= 8).all()
    jobs = result.jobs
    # The replica holds 4 of the node's 8 accelerators for the whole run: 8-accelerator jobs never start.
    assert (jobs.loc[jobs["accelerators"] == 8, "state"] == "unfinished").all()
    assert (jobs.loc[jobs["accelerators"] == 4, "state"] == "completed").all()
    assert result.summary["inference"]["completed"] == 200


def test_autoscaler_adds_replicas_after_a_cold_start_and_drains_them() -> None:
    catalog = load_catalog()
    from dcsim.calibration.inference import weight_bytes

    requests = synthetic(2500, "25/s", lognormal(500, 0.7, 3000), lognormal(150, 0.7, 1000))
    services = [service(requests, weights_load_bandwidth="10GB/s",
                        replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 1, "max_count": 4}])]
    data = scenario(services, nodes=2,
                    policies={"autoscaler": {"name": "queue_target", "target_outstanding": 20.0, "interval": 10.0,
                                             "scale_down_window": 0.0}})
    result = run(data)
    replicas = result.replicas
    assert len(replicas) > 1
    added = replicas.iloc[1:]
    cold = weight_bytes(catalog.model(MODEL)) / 10e9
    np.testing.assert_allclose(added["ready_s"] - added["requested_s"], cold, rtol=1e-9)
    assert added["stopped_s"].notna().all()  # drained back to min_replicas once the load was gone
    assert result.summary["inference"]["completed"] == 2500


# --- bad input --------------------------------------------------------------------------------------------


def test_weights_that_do_not_fit_fail_with_the_field() -> None:
    requests = synthetic(10, "1/s", constant(100), constant(10))
    data = scenario([service(requests, replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": 1}])])
    with pytest.raises(ScenarioError, match=r"services\.0\.replicas\.0: Llama-2-70B weights \(138 GB\) leave no room"):
        run(data)


def test_tensor_parallelism_beyond_a_node_fails() -> None:
    requests = synthetic(10, "1/s", constant(100), constant(10))
    data = scenario([service(requests, replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": 16}])])
    with pytest.raises(ScenarioError, match="tensor_parallel: a replica must fit on one node"):
        run(data)


def test_too_many_initial_replicas_fail() -> None:
    requests = synthetic(10, "1/s", constant(100), constant(10))
    data = scenario([service(requests, replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 3}])])
    with pytest.raises(ScenarioError, match="cannot place 3 initial replicas"):
        run(data)


@pytest.mark.parametrize(("path", "value", "message"), [
    (("requests", "arrival", "rate"), "0/s", "greater than 0"),
    (("requests", "arrival", "rate"), "-3/s", "rate"),
    (("max_batch",), 0, "greater than or equal to 1"),
])
def test_bad_service_fields_fail_in_one_line(path: tuple[str, ...], value: Any, message: str) -> None:
    data = scenario([service(synthetic(10, "1/s", constant(100), constant(10)))])
    target = data["workload"]["inference"]["services"][0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(DcsimError, match=message) as info:
        run(data)
    assert "workload.inference.services.0." + ".".join(path) in str(info.value)


def test_a_balancer_choosing_a_replica_not_offered_is_a_policy_error() -> None:
    from dcsim.policies.base import PolicyBase
    from dcsim.policies.registry import register

    @register("balancer", "test_rogue")
    class Rogue(PolicyBase):
        def __init__(self) -> None:
            pass

        def choose(self, request: Any, view: Any) -> int:
            return 99

    data = scenario([service(synthetic(5, "1/s", constant(100), constant(10)))], policies={"balancer": "test_rogue"})
    with pytest.raises(PolicyError, match=r"balancer 'test_rogue': chose replica 99 for request 0, not one of"):
        run(data)


# --- regressions found in review ----------------------------------------------------------------------------


def both_modes(data: dict[str, Any]) -> tuple[RunResult, RunResult]:
    fast = run(data)
    slow = run({**data, "workload": {**data["workload"],
                                      "inference": {**data["workload"]["inference"], "fast_forward": False}}})
    return fast, slow


def test_an_arrival_exactly_at_the_first_boundary_waits_for_the_iteration_in_both_modes(tmp_path: Any) -> None:
    path = tmp_path / "r.csv"
    path.write_text(f"arrival,prompt_tokens,output_tokens\n0.0,700,50\n{prefill(700)!r},200,5\n")
    fast, slow = both_modes(scenario([service({"source": "trace", "path": str(path)})]))
    np.testing.assert_allclose(fast.requests["admitted_s"], slow.requests["admitted_s"], rtol=1e-12)


def test_kv_use_reported_mid_stretch_counts_the_iterations_done(tmp_path: Any) -> None:
    boundaries = np.cumsum([prefill(400)] + [decode(1, 400 + i) for i in range(199)])
    arrival = (boundaries[100] + boundaries[101]) / 2
    fast, slow = both_modes(scenario([service(trace_requests(tmp_path, [(0.0, 400, 200), (arrival, 200, 3)]))]))
    rows = [ts[np.isclose(ts["time_s"], arrival, rtol=0, atol=1e-9)]["kv_used_tokens"].tolist()
            for ts in (fast.replica_timeseries, slow.replica_timeseries)]
    assert rows[0] == rows[1] == [500]  # 400 prompt tokens + 100 decode iterations done


def test_a_request_only_a_larger_group_can_hold_starts_a_replica_of_that_group(tmp_path: Any) -> None:
    rows = [(0.0, 300, 20), (1.0, 15000, 5000), (2.0, 300, 20)]
    # llm-70b: a 70B transformer with no context limit in the catalog (Llama-2-70B's 4,096 tokens would
    # leave the long request out, issue 15)
    data = scenario([service(trace_requests(tmp_path, rows), model="llm-70b", replicas=[
        {"accelerator": ACCELERATOR, "tensor_parallel": 2, "count": 1},
        {"accelerator": ACCELERATOR, "tensor_parallel": 4, "count": 0, "max_count": 1}])],
        policies={"autoscaler": {"name": "queue_target", "interval": 10.0}})
    result = run(data)  # used to tick forever without a horizon
    assert (result.requests["state"] == "completed").all()
    assert result.requests.loc[1, "replica"] == 1 and result.replicas.loc[1, "tensor_parallel"] == 4
    fixed = run(scenario([service(trace_requests(tmp_path, rows), model="llm-70b", replicas=[
        {"accelerator": ACCELERATOR, "tensor_parallel": 2, "count": 1},
        {"accelerator": ACCELERATOR, "tensor_parallel": 4, "count": 0, "max_count": 1}])]))
    assert fixed.requests["state"].tolist() == ["completed", "rejected", "completed"]  # no autoscaler: cannot grow


def test_accelerators_freed_by_one_service_let_a_blocked_service_grow() -> None:
    a = service(synthetic(400, "20/s", constant(500), constant(200)), name="a", min_replicas=0,
                replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 2}])
    b = service(synthetic(5, "1/s", constant(100), constant(10)), name="b", min_replicas=0,
                replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 0, "max_count": 1}])
    data = scenario([a, b], policies={"autoscaler": {"name": "queue_target", "interval": 10.0,
                                                      "scale_down_window": 0.0}})
    result = run(data)
    assert (result.requests["state"] == "completed").all()
    assert result.summary["inference"]["services"]["b"]["scale_up_blocked"] >= 1


def test_replicas_ready_at_the_same_instant_share_the_backlog() -> None:
    requests = synthetic(100, "100/s", constant(500), constant(100))
    group = {"accelerator": ACCELERATOR, "tensor_parallel": 2, "count": 0, "max_count": 4}
    data = scenario([service(requests, min_replicas=0, weights_load_bandwidth="20GB/s", replicas=[group])],
                    policies={"autoscaler": {"name": "queue_target", "target_outstanding": 5.0, "interval": 5.0},
                              "balancer": "least_outstanding_requests"})
    assert run(data).replicas["requests_completed"].tolist() == [25, 25, 25, 25]


def test_a_run_without_horizon_ends_at_its_last_completion_despite_autoscaler_checks() -> None:
    requests = synthetic(500, "25/s", lognormal(500, 0.7, 3000), lognormal(150, 0.7, 1000))
    data = scenario([service(requests, replicas=[{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 1,
                                                  "max_count": 2}])],
                    policies={"autoscaler": {"name": "queue_target", "interval": 7.0}})
    result = run(data)
    assert result.summary["sim_time_s"] == pytest.approx(result.requests["end_s"].max(), rel=1e-9)  # 10 digits


def test_services_without_an_slo_are_left_out_of_attainment() -> None:
    a = service(synthetic(50, "2/s", constant(500), constant(50)), name="a", slo={"ttft": "1ms"})
    b = service(synthetic(50, "2/s", constant(500), constant(50)), name="b")
    inference = run(scenario([a, b])).summary["inference"]
    assert inference["slo_attainment"] == 0.0 == inference["services"]["a"]["slo_attainment"]
    assert inference["services"]["b"]["slo_attainment"] is None


@pytest.mark.parametrize(("replicas", "changes", "message"), [
    ([{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 0}], {}, "has no replicas"),
    ([{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 0, "max_count": 2}], {"min_replicas": 1},
     "start 0 replicas, fewer than min_replicas=1"),
    ([{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 1}], {"kv_cache": "10TB"},
     "kv_cache: 10000.0 GB plus Llama-2-70B weights"),
])
def test_services_that_cannot_work_fail_in_one_line(replicas: list[dict[str, Any]], changes: dict[str, Any],
                                                    message: str) -> None:
    data = scenario([service(synthetic(10, "1/s", constant(100), constant(10)), replicas=replicas, **changes)])
    with pytest.raises(ScenarioError, match=message) as info:
        run(data)
    assert len(str(info.value).splitlines()) == 1


def test_a_tiny_gamma_cv_is_a_field_error_not_a_crash() -> None:
    requests = synthetic(10, "1/s", constant(100), constant(10), process="gamma")
    requests["arrival"]["cv"] = 1e-200
    with pytest.raises(ScenarioError, match=r"arrival\.cv"):
        run(scenario([service(requests)]))
