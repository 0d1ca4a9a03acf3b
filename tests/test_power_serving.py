"""Serving replicas under a power budget (issue 17): one cap for training and serving accelerators,
replicas slowed by the calibrated cap-to-slowdown curve with their own draw as the demand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dcsim
from dcsim.calibration import load_calibration
from dcsim.catalog import load_catalog
from dcsim.results import RunResult
from dcsim.scenario import scenario_from_dict
from tests.helpers import ROOT, tiny_scenario

MODEL, ACCELERATOR, TP = "Llama-2-70B", "H100-SXM", 4  # H100-SXM: a calibrated serving power curve
HOST_W = 100.0


def _scenario(tmp_path: Path, rows: list[tuple[float, int, int]], power: dict[str, Any] | None,
              fast_forward: bool = True) -> dict[str, Any]:
    trace = tmp_path / "requests.csv"
    trace.write_text("arrival,prompt_tokens,output_tokens\n" + "".join(f"{a},{p},{o}\n" for a, p, o in rows))
    data: dict[str, Any] = {
        "name": "serving-power", "seed": 5,
        "cluster": {"node_pools": [{"name": "h", "count": 1, "accelerator": ACCELERATOR, "accelerators_per_node": 8,
                                    "host_power": {"idle": f"{HOST_W}W", "busy": f"{HOST_W}W"}}]},
        "workload": {"inference": {"fast_forward": fast_forward, "services": [{
            "name": "chat", "model": MODEL,
            "replicas": [{"accelerator": ACCELERATOR, "tensor_parallel": TP, "count": 1}],
            "requests": {"source": "trace", "path": str(trace)}}]}},
    }
    if power is not None:
        data["policies"] = {"power": power}
    return data


def _run(data: dict[str, Any]) -> RunResult:
    return dcsim.run(scenario_from_dict(data, "test.yaml", str(ROOT)))


def _prefill(tokens: int) -> float:
    return load_calibration().inference.prefill_time(load_catalog().model(MODEL), ACCELERATOR, tokens, 1, TP)


def _decode(context: int) -> float:
    return load_calibration().inference.decode_time(load_catalog().model(MODEL), ACCELERATOR, 1, context, TP)


def _lone_request_budget(cap_target: float) -> tuple[float, float, int]:
    """A budget whose continuous cap for one busy batch-1 replica is `cap_target` (whole watts are taken
    rounded down): 8 idle accelerators and the host, plus 4 accelerators drawing the cap."""
    idle = load_catalog().accelerator(ACCELERATOR).idle_w.value
    base = 8 * idle + HOST_W
    return base + TP * (cap_target - idle), base, math.floor(cap_target)


@pytest.mark.parametrize("fast_forward", [True, False])
def test_budget_stretches_a_lone_request_by_the_calibrated_slowdown(tmp_path: Path, fast_forward: bool) -> None:
    """One replica (4 x H100-SXM) serving one request alone: it draws p W per accelerator at batch 1
    (the calibrated serving curve). A budget that leaves each accelerator 300.5 W gives a cap of 300 W
    (continuous levels, whole watts): the replica draws 4 x 300 W, and its prefill and every decode
    iteration take (p / 300) ** beta times as long (the calibrated curve with p as the demand)."""
    prompt, output = 700, 50
    budget, base, cap = _lone_request_budget(300.5)
    draw = load_calibration().power.serving_power(ACCELERATOR, 1, TP)
    assert draw is not None and draw > cap > 0.33 * 700  # the cap binds and is within the governor's range
    slowdown = load_calibration().power.cap_slowdown(ACCELERATOR, cap, draw)
    assert slowdown > 1.05
    power = {"name": "budget", "params": {"budget": budget, "levels": 0}}
    capped = _run(_scenario(tmp_path, [(0.0, prompt, output)], power, fast_forward))
    free = _run(_scenario(tmp_path, [(0.0, prompt, output)], None, fast_forward))
    row, unc = capped.requests.iloc[0], free.requests.iloc[0]
    decode_s = sum(_decode(prompt + i) for i in range(output - 1))
    assert unc["ttft_s"] == pytest.approx(_prefill(prompt), rel=1e-12)
    assert row["ttft_s"] == pytest.approx(_prefill(prompt) * slowdown, rel=1e-12)
    assert row["e2e_s"] == pytest.approx((_prefill(prompt) + decode_s) * slowdown, rel=1e-12)
    assert row["tpot_s"] == pytest.approx(unc["tpot_s"] * slowdown, rel=1e-12)
    states = capped.replica_timeseries.drop_duplicates(["replica_id", "time_s"], keep="last")  # the last row holds
    assert states.loc[states["batch"] > 0, "power_w"].unique().tolist() == [TP * cap]
    assert capped.replicas["energy_j"].iloc[0] == pytest.approx(TP * cap * row["e2e_s"], rel=1e-9)
    ts = capped.timeseries
    busy = ts[ts["serving_busy_all"] > 0]
    idle = load_catalog().accelerator(ACCELERATOR).idle_w.value
    assert busy["power_it_w"].max() == pytest.approx(base + TP * (cap - idle))
    assert (ts["power_it_w"] <= budget + 1e-6).all()
    section = capped.summary["power"]
    assert section["over_budget_s"] == 0
    assert section["capped_accelerator_hours"] == pytest.approx(TP * row["e2e_s"] / 3600, rel=1e-9)


@pytest.mark.parametrize("fast_forward", [True, False])
def test_a_cap_in_the_middle_of_a_decode_stretch_slows_what_is_left(tmp_path: Path, fast_forward: bool) -> None:
    """A demand-response window opens 10 s into a long decode: the iterations done by then keep their
    times, the one in progress runs its remaining part slowed, and every later one is slowed. The
    fast-forwarded stretch and the per-iteration mode give the same hand-computed end."""
    prompt, output, opens = 600, 1200, 10.0
    budget, _, cap = _lone_request_budget(280.5)
    draw = load_calibration().power.serving_power(ACCELERATOR, 1, TP)
    assert draw is not None
    slowdown = load_calibration().power.cap_slowdown(ACCELERATOR, cap, draw)
    window = {"start": "00:00:10", "end": "23:00", "budget": budget}
    result = _run(_scenario(tmp_path, [(0.0, prompt, output)],
                            {"name": "demand_response", "params": {"windows": [window], "levels": 0}}, fast_forward))
    ends = np.cumsum([_prefill(prompt)] + [_decode(prompt + i) for i in range(output - 1)])
    assert ends[0] < opens < ends[-1]
    k = int(np.searchsorted(ends, opens))  # iteration in progress at the window's start (ends[k] > opens)
    expected = opens + (ends[k] - opens) * slowdown + (ends[-1] - ends[k]) * slowdown
    assert result.requests.iloc[0]["e2e_s"] == pytest.approx(expected, rel=1e-9)
    assert result.requests.iloc[0]["ttft_s"] == pytest.approx(_prefill(prompt), rel=1e-12)  # before the window


def test_without_a_binding_cap_serving_is_untouched(tmp_path: Path) -> None:
    """A budget above what the replica draws changes no request time."""
    rows = [(0.0, 500, 40), (0.1, 300, 80), (0.15, 900, 20)]
    budget, _, _ = _lone_request_budget(2_000.0)
    capped = _run(_scenario(tmp_path, rows, {"name": "budget", "params": {"budget": budget}}))
    free = _run(_scenario(tmp_path, rows, None))
    for column in ("first_token_s", "end_s"):
        assert capped.requests[column].tolist() == free.requests[column].tolist()
    assert capped.summary["power"]["capped_accelerator_hours"] == 0


def _training_and_chat(seed: int) -> dict[str, Any]:
    """25 training jobs and a 300-request chat service on the tiny scenario's H100 pool."""
    data = tiny_scenario(seed=seed)
    data["workload"]["training"]["jobs"] = 25
    data["workload"]["inference"] = {"services": [{
        "name": "chat", "model": MODEL, "replicas": [{"accelerator": "H100", "tensor_parallel": TP, "count": 1}],
        "requests": {"source": "synthetic", "count": 300, "arrival": {"process": "poisson", "rate": "1/s"},
                     "prompt_tokens": {"distribution": "lognormal", "median": 400, "sigma": 0.8, "max": 3000},
                     "output_tokens": {"distribution": "lognormal", "median": 150, "sigma": 0.8, "max": 800}}}]}
    return data


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), share=st.floats(0.0, 1.0))
def test_budget_holds_with_training_and_serving_together(seed: int, share: float) -> None:
    """Training jobs and an inference service share the H100 pool; any budget from the all-at-lowest-cap
    floor up to the uncapped peak holds at every instant, and every job and request completes."""
    data = _training_and_chat(seed)
    catalog = load_catalog()
    floor = 16 * 0.33 * catalog.accelerator("H100").tdp_w.value + 8 * 0.33 * catalog.accelerator("TPU-v4").tdp_w.value
    floor += 2 * 900 + 2 * 200
    free = _run(data)
    peak = float(free.timeseries["power_it_w"].max())
    budget = floor + share * max(peak - floor, 0.0)
    data["policies"]["power"] = {"name": "budget", "params": {"budget": budget}}
    result = _run(data)
    assert (result.timeseries["power_it_w"] <= budget + 1e-6).all()
    assert result.summary["power"]["over_budget_s"] == 0
    assert (result.jobs["state"] == "completed").all()
    assert (result.requests["end_s"].notna()).all()


def test_at_the_lowest_caps_replicas_and_jobs_both_slow() -> None:
    """A budget at the all-at-lowest-cap floor caps the H100s that train and those that serve alike:
    requests take longer than uncapped, and so does the training workload."""
    data = _training_and_chat(7)
    catalog = load_catalog()
    floor = 16 * 0.33 * 700 + 8 * 0.33 * catalog.accelerator("TPU-v4").tdp_w.value + 2 * 900 + 2 * 200
    free = _run(data)
    data["policies"]["power"] = {"name": "budget", "params": {"budget": floor}}
    capped = _run(data)
    assert (capped.timeseries["power_it_w"] <= floor + 1e-6).all()
    assert capped.requests["e2e_s"].mean() > 1.2 * free.requests["e2e_s"].mean()
    assert capped.jobs["end_s"].max() > 1.2 * free.jobs["end_s"].max()


@pytest.mark.parametrize("preemption", ["recompute", "swap"])
def test_fast_forward_equals_per_iteration_under_a_budget_with_paged_kv(preemption: str) -> None:
    """A busy service with paged KV (a small cache: preemptions) under a budget that caps it as batches
    and caps change: the fast-forwarded decode clock gives the per-iteration mode's request times."""
    def scenario(power: dict[str, Any] | None, fast_forward: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": "paged-power", "seed": 5,
            "cluster": {"node_pools": [{"name": "h", "count": 1, "accelerator": "H100", "accelerators_per_node": 8}]},
            "workload": {"inference": {"fast_forward": fast_forward, "services": [{
                "name": "chat", "model": MODEL, "kv_cache": "6GB", "max_batch": 64,
                "paged_kv": {"preemption": preemption, "prefix_caching": True},
                "replicas": [{"accelerator": "H100", "tensor_parallel": TP, "count": 2}],
                "requests": {"source": "synthetic", "count": 400, "arrival": {"process": "poisson", "rate": "4/s"},
                             "prompt_tokens": {"distribution": "lognormal", "median": 800, "sigma": 0.8, "max": 4000},
                             "output_tokens": {"distribution": "lognormal", "median": 300, "sigma": 0.8,
                                               "max": 1500}}}]}},
        }
        if power is not None:
            data["policies"] = {"power": power}
        return data

    free = _run(scenario(None, True)).timeseries
    floor = free["power_hosts_w"].max() + 8 * 0.33 * load_catalog().accelerator("H100").tdp_w.value  # lowest caps
    budget = floor + 0.3 * (free["power_it_w"].max() - floor)
    power = {"name": "budget", "params": {"budget": budget}}
    fast, slow = _run(scenario(power, True)), _run(scenario(power, False))
    assert fast.requests["preemptions"].sum() > 0 and fast.summary["power"]["capped_accelerator_hours"] > 0
    for column in ("first_token_s", "end_s"):
        np.testing.assert_allclose(fast.requests[column], slow.requests[column], rtol=1e-12, atol=1e-9)
    assert (fast.timeseries["power_it_w"] <= budget + 1e-6).all()
