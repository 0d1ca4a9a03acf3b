"""No modelled step beats its roofline (issue 15): over every (model, accelerator, tensor-parallel degree,
batch, tokens) the catalog can produce, decode is no faster than its bytes over peak memory bandwidth,
prefill and LLM training no faster than their FLOPs over peak 16-bit FLOP/s."""

from __future__ import annotations

import itertools

import pytest

from dcsim.calibration import load_calibration
from dcsim.calibration.inference import BYTES_PER_PARAM, model_shape
from dcsim.calibration.training import LLM_FLOPS_PER_PARAM_TOKEN
from dcsim.catalog import AcceleratorSpec, Figure, ModelSpec, load_catalog

TPS = (1, 2, 4, 8)
BATCHES = (1, 4, 32, 256)
TOKENS = (1, 128, 4096, 32768)
SLACK = 1 - 1e-9  # float rounding only


def user_parts() -> tuple[AcceleratorSpec, ...]:
    def fig(value: float) -> Figure:
        return Figure(value, "test")

    base = {"kind": "gpu", "vendor": "test", "memory_bytes": fig(96e9), "memory_bandwidth": fig(9e12),
            "interconnect_bandwidth": fig(1e12), "tdp_w": fig(800), "idle_w": fig(100), "origin": "test"}
    return (AcceleratorSpec(name="Fast-like-A100", peak_fp16_flops=fig(3e15), like="A100-80GB", **base),  # type: ignore[arg-type]
            AcceleratorSpec(name="Fast-unlike", peak_fp16_flops=fig(3e15), **base))  # type: ignore[arg-type]


def models() -> list[ModelSpec]:
    catalog = load_catalog()
    llms = [spec for spec in catalog.models.values() if spec.kind == "llm"]
    return llms + [catalog.model(name) for name in ("llm-1b", "llm-13b", "llm-400b")]


def test_decode_and_prefill_never_beat_the_roofline() -> None:
    calibration = load_calibration((), user_parts())
    inference, catalog = calibration.inference, calibration.catalog
    checked = 0
    for model, name in itertools.product(models(), catalog.accelerators):
        spec = catalog.accelerators[name]
        assert spec.memory_bandwidth is not None
        bandwidth, peak = spec.memory_bandwidth.value, spec.peak_fp16_flops.value
        shape = model_shape(model)
        weights = shape.params * BYTES_PER_PARAM
        for tp, batch, tokens in itertools.product(TPS, BATCHES, TOKENS):
            context = batch * tokens
            decode = inference.decode_time(model, name, batch, context, tp)
            moved = (weights + shape.kv_bytes_per_token * context) / (tp * bandwidth)
            assert decode >= moved * SLACK, (model.name, name, tp, batch, tokens, decode, moved)
            flops = 2 * shape.compute_params * batch * tokens + 2 * shape.layers * shape.hidden * batch * tokens**2
            prefill = inference.prefill_time(model, name, tokens, batch, tp)
            assert prefill >= flops / (tp * peak) * SLACK, (model.name, name, tp, batch, tokens, prefill)
            checked += 1
    assert checked > 30_000


def test_llm_training_never_beats_the_roofline() -> None:
    calibration = load_calibration((), user_parts())
    catalog = calibration.catalog
    for model, name in itertools.product(models(), catalog.accelerators):
        peak = catalog.accelerators[name].peak_fp16_flops.value
        for batch, tokens in itertools.product(BATCHES, TOKENS):
            time = calibration.training.compute_time(model, name, batch, tokens)
            flops = LLM_FLOPS_PER_PARAM_TOKEN * model.compute_params * batch * tokens
            assert time >= flops / peak * SLACK, (model.name, name, batch, tokens)


def test_a100_7b_decode_at_batch_one() -> None:
    """The case of issue 15: before the bound, 16.3 ms (memory 0.753, i.e. 2.7 TB/s on a 2.04 TB/s part,
    plus 11 ms of per-layer overhead fitted to tensor-parallel 70B steps). Reading the 16-bit weights
    at peak bandwidth takes 6.6 ms; an operator-profile simulator predicts 9.7 ms (issue 15)."""
    calibration = load_calibration()
    model = calibration.catalog.model("Llama-2-7B")
    decode = calibration.inference.decode_time(model, "A100-80GB", 1, 512)
    roofline = 2 * model.params / 2.039e12  # type: ignore[operator]
    assert roofline == pytest.approx(6.61e-3, rel=1e-2)
    assert roofline <= decode <= 9.7e-3 * 1.1, decode
    # a tensor-parallel step of the same model still pays the per-layer cost fitted at TP > 1
    assert calibration.inference.decode_time(model, "A100-80GB", 1, 512, 2) > decode / 2
