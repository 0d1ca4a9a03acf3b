"""Idle shutdown beside inference services (issue 17): nodes hosting replicas stay on, nodes freed by
scale-down go off, and a scale-up that finds no room wakes a node (paying the wake latency)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dcsim
from dcsim.engine.power_nodes import NodePower
from dcsim.results import RunResult
from dcsim.scenario import scenario_from_dict
from tests.helpers import ROOT, tiny_scenario

MODEL = "Llama-2-70B"


def _run(data: dict[str, Any]) -> RunResult:
    return dcsim.run(scenario_from_dict(data, "test.yaml", str(ROOT)))


def _bursts(power: dict[str, Any] | None, gap: str = "2h", interval: float = 60.0) -> dict[str, Any]:
    """Four 8-H100 nodes, one service of TP-8 replicas (one per node), 1 to 4 replicas under queue_target;
    requests come in two bursts `gap` apart, so the service scales up, down, and up again."""
    data: dict[str, Any] = {
        "name": "shutdown-serving", "seed": 3,
        "cluster": {"node_pools": [{"name": "h", "count": 4, "accelerator": "H100", "accelerators_per_node": 8,
                                    "host_power": {"idle": "500W", "busy": "900W"}}]},
        "workload": {"inference": {"services": [{
            "name": "chat", "model": MODEL, "min_replicas": 1,
            "replicas": [{"accelerator": "H100", "tensor_parallel": 8, "count": 1, "max_count": 4}],
            "weights_load_bandwidth": "10GB/s",
            "requests": {"source": "synthetic", "count": 6000,
                         "arrival": {"process": "diurnal", "rate": "1/s", "amplitude": 0.95, "period": gap,
                                     "peak": "30min"},
                         "prompt_tokens": {"distribution": "lognormal", "median": 1500, "sigma": 0.5, "max": 4000},
                         "output_tokens": {"distribution": "lognormal", "median": 300, "sigma": 0.5, "max": 1000}}}]}},
        "policies": {"autoscaler": {"name": "queue_target", "target_outstanding": 8.0, "interval": interval}},
    }
    if power is not None:
        data["policies"]["power"] = power
    return data


def test_nodes_go_off_after_scale_down_and_wake_for_scale_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service scales down between bursts: its freed nodes go off; the next burst's scale-up finds
    no room and wakes them. Every request completes, and no node is ever powered off while a replica
    holds an accelerator on it (checked at every power-off)."""
    powered_off: list[int] = []
    original = NodePower._power_off

    def checked(self: NodePower, node_id: int, now: float) -> None:
        assert self.cluster.free_on[node_id] == self.cluster.nodes[node_id].size  # no replica, no job on it
        powered_off.append(node_id)
        original(self, node_id, now)

    monkeypatch.setattr(NodePower, "_power_off", checked)
    free = _run(_bursts(None))
    assert free.summary["inference"]["replicas_started"] > 1  # the bursts make it scale
    result = _run(_bursts({"name": "idle_shutdown", "params": {"idle_after": "5min", "wake_latency": "3min"}}))
    requests = result.requests
    assert requests["end_s"].notna().all() and len(requests) == len(free.requests)
    power = result.summary["power"]
    assert power["wakes"] >= 1 and power["shutdown_node_hours"] > 0 and powered_off
    assert result.summary["inference"]["replicas_started"] > 1
    # The wake latency shows: a scale-up that found its node off starts its replica 3 min later than with
    # every node on (the same autoscaler decision, then the wake), on the node that was off.
    free_starts = free.replicas["requested_s"].tolist()
    late = result.replicas[[any(abs(t - (f + 180.0)) < 1e-6 for f in free_starts)
                            for t in result.replicas["requested_s"]]]
    assert len(late) >= 1
    assert result.summary["energy"]["it_kwh"] < free.summary["energy"]["it_kwh"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), idle=st.sampled_from(["0s", "2min", "30min"]),
       latency=st.sampled_from(["0s", "5min", "30min"]), keep=st.integers(0, 1))
def test_idle_shutdown_strands_no_job_and_no_request(seed: int, idle: str, latency: str, keep: int) -> None:
    """Training jobs and an autoscaled service on the tiny cluster: with any idle time, wake latency and
    keep_on, every job and every request completes, as with every node on."""
    data = tiny_scenario(seed=seed)
    data["workload"]["training"]["jobs"] = 20
    data["workload"]["inference"] = {"services": [{
        "name": "chat", "model": MODEL, "min_replicas": 0,
        "replicas": [{"accelerator": "H100", "tensor_parallel": 4, "count": 1, "max_count": 4}],
        "requests": {"source": "synthetic", "count": 400,
                     "arrival": {"process": "diurnal", "rate": "1/min", "amplitude": 0.95, "period": "3h",
                                 "peak": "1h"},
                     "prompt_tokens": {"distribution": "lognormal", "median": 500, "sigma": 0.5, "max": 3000},
                     "output_tokens": {"distribution": "lognormal", "median": 200, "sigma": 0.5, "max": 800}}}]}
    data["policies"]["autoscaler"] = {"name": "queue_target", "target_outstanding": 4.0, "interval": 60.0}
    data["policies"]["power"] = {"name": "idle_shutdown",
                                 "params": {"idle_after": idle, "wake_latency": latency, "keep_on": keep}}
    result = _run(data)
    jobs = result.jobs
    assert ((jobs["state"] == "completed") | (jobs["state"] == "rejected")).all()
    assert result.requests["end_s"].notna().all()
    assert result.summary["inference"]["completed"] == 400
