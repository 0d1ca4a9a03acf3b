"""What the hardware cannot do (issue 15): training state that does not fit memory, requests longer
than the model's context, replica shapes whose weights do not fit."""

from __future__ import annotations

from typing import Any

import pytest

import dcsim
from dcsim.calibration.memory import TRAINING_BYTES_PER_PARAM, smallest_feasible_count, training_memory_problem
from dcsim.catalog import load_catalog
from dcsim.errors import ScenarioError
from dcsim.scenario import scenario_from_dict


def training_scenario(pools: list[tuple[str, int]], models: dict[str, float], gangs: list[int],
                      duration: str = "5min") -> dict[str, Any]:
    return {
        "name": "memory", "seed": 4,
        "cluster": {"node_pools": [{"name": f"p{i}", "count": count, "accelerator": acc, "accelerators_per_node": 8}
                                   for i, (acc, count) in enumerate(pools)]},
        "workload": {"training": {
            "source": "synthetic", "jobs": 40, "arrival": {"rate": "60/h"}, "accelerators": {"values": gangs},
            "duration": {"distribution": "constant", "value": duration}, "models": models}},
    }


def test_memory_rule_by_hand() -> None:
    catalog = load_catalog()
    llama7 = catalog.model("Llama-2-7B")
    state = TRAINING_BYTES_PER_PARAM * 6_738_415_616  # 107.8 GB
    assert training_memory_problem(llama7, catalog.accelerator("H100"), 1) is not None  # 80 GB
    assert training_memory_problem(llama7, catalog.accelerator("H200"), 1) is None  # 141 GB
    assert training_memory_problem(llama7, catalog.accelerator("H100"), 2) is None  # 160 GB
    assert smallest_feasible_count(llama7, catalog.accelerator("A100-40GB")) == int(-(-state // 40e9)) == 3
    assert training_memory_problem(catalog.model("ResNet-50"), catalog.accelerator("K80"), 1) is None  # no count


def test_an_infeasible_pair_is_never_placed() -> None:
    """Two-GPU Llama-2-7B jobs fit 2 x H200 (282 GB) but not 2 x A100-40GB (80 GB < 108 GB)."""
    data = training_scenario([("A100-40GB", 2), ("H200", 1)], {"Llama-2-7B": 1, "ResNet-50": 1}, [2], "2h")
    jobs = dcsim.run(scenario_from_dict(data)).jobs
    llama = jobs[jobs["model"] == "Llama-2-7B"]
    assert len(llama) > 5 and set(llama["accelerator_model"].dropna()) == {"H200"}
    assert (llama["state"] == "completed").all()
    resnet = jobs[jobs["model"] == "ResNet-50"]
    assert "A100-40GB" in set(resnet["accelerator_model"])  # the other model still uses the A100s


def test_a_job_no_accelerator_can_hold_is_rejected_with_the_reason() -> None:
    data = training_scenario([("H100", 2)], {"Llama-2-70B": 1}, [1, 8])
    result = dcsim.run(scenario_from_dict(data))
    jobs = result.jobs
    assert (jobs["state"] == "rejected").all()
    assert result.summary["training"]["jobs_rejected"] == 40
    reason = jobs["reason"].iloc[0]
    assert "Llama-2-70B's weights, gradients and Adam state (1104 GB" in reason and "x H100-SXM" in reason


def serving_scenario(prompt: int, output: int, **service: Any) -> dict[str, Any]:
    return {
        "name": "context", "seed": 2,
        "cluster": {"node_pools": [{"name": "h", "count": 1, "accelerator": "H100", "accelerators_per_node": 8}]},
        "workload": {"inference": {"services": [{
            "name": "chat", "model": "Llama-2-7B", "replicas": [{"accelerator": "H100", "count": 1}],
            "requests": {"source": "synthetic", "count": 100, "arrival": {"rate": "2/s"},
                         "prompt_tokens": {"distribution": "lognormal", "median": prompt, "sigma": 0.6},
                         "output_tokens": {"distribution": "constant", "value": output}},
            **service}]}},
    }


def test_requests_longer_than_the_context_are_rejected_and_counted() -> None:
    result = dcsim.run(scenario_from_dict(serving_scenario(3500, 400)))
    text = str(result.summary)
    assert "longer than Llama-2-7B's context (4096 tokens)" in text
    requests = result.requests
    assert len(requests) < 100
    assert ((requests["prompt_tokens"] + requests["output_tokens"]) <= 4096).all()
    skipped = _workload(result)["skipped"]
    (count,) = skipped.values()
    assert count + len(requests) == 100, "every request is served or counted"


def test_truncate_keeps_every_request_within_the_context() -> None:
    result = dcsim.run(scenario_from_dict(serving_scenario(3500, 400, context_overflow="truncate")))
    requests = result.requests
    assert len(requests) == 100
    assert ((requests["prompt_tokens"] + requests["output_tokens"]) <= 4096).all()
    adjusted = _workload(result)["adjusted"]
    (reason, count), = adjusted.items()
    assert reason == "truncated to Llama-2-7B's context (4096 tokens)" and count > 0


def test_a_replica_shape_whose_weights_do_not_fit_is_an_error() -> None:
    data = serving_scenario(500, 100)
    data["workload"]["inference"]["services"][0]["model"] = "Llama-2-70B"
    with pytest.raises(ScenarioError, match=r"replicas\.0: Llama-2-70B weights \(138 GB\) leave no room"):
        dcsim.run(scenario_from_dict(data))


def _workload(result: Any) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "skipped" in node and "source" in node:
                found.append(node)
            for value in node.values():
                walk(value)

    walk(result.summary)
    assert len(found) == 1
    return found[0]
