"""The LLM inference latency model: hand-checked roofline values, monotonicity, the fitter, the readers.

Tests marked `needs_data` read ../shared/data (Splitwise, Vidur, ML.ENERGY) and skip without it; the
rest build models from explicit coefficients or synthetic measurement rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dcsim.calibration.fitting import FitError
from dcsim.calibration.inference import (
    DECODE_TERMS,
    PREFILL_TERMS,
    ROOFLINE_TERMS,
    TERMS,
    Entry,
    Hardware,
    InferenceModel,
    kv_bytes_per_token,
    model_shape,
    weight_bytes,
)
from dcsim.calibration.inference_fit import fit_inference, mlenergy_decode_check
from dcsim.calibration.table import check_row, measurement_frame
from dcsim.catalog import ModelSpec, load_catalog
from dcsim.errors import CalibrationError
from tests.helpers import SHARED_DATA

needs_data = pytest.mark.skipif(not (SHARED_DATA / "splitwise-perf-model").is_dir()
                                or not (SHARED_DATA / "vidur-profiling").is_dir(),
                                reason=f"Splitwise / Vidur data not found under {SHARED_DATA}")
TINY = ModelSpec(name="tiny", family="llm", kind="llm", source="test", params=1e9, layers=2, hidden=8, heads=2,
                 kv_heads=1)
HW = Hardware(peak=1e15, bandwidth=2e12, link=1e12)
MODELS = ["Llama-2-7B", "Llama-2-70B", "BLOOM-176B", "Llama-3.1-8B", "Mixtral-8x7B", "llm-30b"]
ACCELERATORS = ["A100-80GB", "H100-SXM", "B200", "TPU-v4", "A100-40GB"]


def explicit(coefficients: dict[str, float], name: str = "X", hardware: Hardware = HW) -> InferenceModel:
    entry = Entry(hardware, dict(coefficients), frozenset(coefficients), {"prefill": 0, "decode": 0, "linear": 0})
    return InferenceModel(entries={name: entry}, default=dict(coefficients))


def random_coefficients(seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    scale = {"prefill_overhead": 1e-4, "sync": 1e-6, "linear_overhead": 1e-5, "decode_overhead": 1e-4,
             "decode_sync": 1e-6}
    scale["decode_tp_overhead"] = 1e-4
    # roofline terms are 1 / efficiency, >= 1 (the fit keeps them there)
    return {t: float(rng.uniform(1 if t in ROOFLINE_TERMS else 0, 5) * scale.get(t, 1.0)) for t in TERMS}


# --- hand computation -------------------------------------------------------------------------------------

def test_roofline_value_by_hand() -> None:
    coefs = {t: 0.0 for t in TERMS} | {"prefill_overhead": 1e-4, "compute": 2.0, "attention": 3.0,
                                        "weight_read": 1.5, "comm": 4.0, "sync": 2e-6, "decode_overhead": 7e-6,
                                        "memory": 1.25, "decode_compute": 6.0, "decode_sync": 3e-6,
                                        "decode_tp_overhead": 5e-5}
    model = explicit(coefs)
    layers, hidden, tp, n, batch = 2, 8, 4, 100, 3
    kv = 2 * layers * 1 * (hidden / 2) * 2  # one KV head of dim 4, 16-bit K and V: 32 bytes per token
    assert kv_bytes_per_token(TINY) == kv == 32
    assert weight_bytes(TINY) == 2e9
    prefill = (layers * 1e-4 + 2.0 * 2 * 1e9 * batch * n / (tp * 1e15) + 3.0 * 2 * layers * hidden * batch * n**2
               / (tp * 1e15) + 1.5 * 2e9 / (tp * 2e12) + 4.0 * 2 * layers * 2 * (tp - 1) / tp * batch * n * hidden * 2
               / 1e12 + 2e-6 * 2 * layers * 2 * (tp - 1))
    assert model.prefill_time(TINY, "X", n, batch, tp) == pytest.approx(prefill, rel=1e-12)
    context = 3 * 500
    decode = (layers * 5e-5 + 1.25 * (2e9 + kv * context) / (tp * 2e12)
              + 6.0 * (2 * 1e9 * batch + 4 * layers * hidden * context) / (tp * 1e15)
              + 3e-6 * 2 * layers * 2 * (tp - 1))
    assert model.decode_time(TINY, "X", batch, context, tp) == pytest.approx(decode, rel=1e-12)
    # one accelerator: its own per-layer overhead, no synchronisation
    decode_one = (layers * 7e-6 + 1.25 * (2e9 + kv * context) / 2e12
                  + 6.0 * (2 * 1e9 * batch + 4 * layers * hidden * context) / 1e15)
    assert model.decode_time(TINY, "X", batch, context, 1) == pytest.approx(decode_one, rel=1e-12)
    assert model.linear_time(TINY, "X", n, 1) == pytest.approx(2.0 * 2e9 * n / 1e15 + 1.5 * 2e9 / 2e12, rel=1e-12)


def test_kv_cache_and_weights_from_the_shape_or_the_parameter_count() -> None:
    catalog = load_catalog()
    assert kv_bytes_per_token(catalog.model("Llama-2-70B")) == 2 * 80 * 8 * 128 * 2
    assert kv_bytes_per_token(catalog.model("Llama-2-7B")) == 2 * 32 * 32 * 128 * 2
    assert weight_bytes(catalog.model("Mixtral-8x7B")) == 2 * (catalog.model("Mixtral-8x7B").params or 0)
    shape = model_shape(catalog.model("llm-7b"))
    layers = (7e9 / (12 * 128.0**2)) ** (1 / 3)
    assert shape.estimated and shape.layers == pytest.approx(layers) and shape.hidden == pytest.approx(128 * layers)
    assert shape.kv_bytes_per_token == pytest.approx(4 * layers * 128 * layers)  # multi-head: an upper bound
    with pytest.raises(CalibrationError, match="not an LLM"):
        model_shape(catalog.model("ResNet-50"))


# --- monotone by construction -----------------------------------------------------------------------------

def assert_monotone(model: InferenceModel, accelerator: str, spec: ModelSpec, tp: int) -> None:
    prompts = np.unique(np.geomspace(1, 32768, 60).round())
    for batch in (1, 3, 16):
        times = [model.prefill_time(spec, accelerator, p, batch, tp) for p in prompts]
        assert np.all(np.diff(times) >= 0), (spec.name, accelerator, tp, batch)
    memory = load_catalog().accelerator(accelerator).memory_bytes.value * tp
    for context in (64, 1000, 8000):
        fits = int((memory - weight_bytes(spec)) / (kv_bytes_per_token(spec) * context))
        batches = [float(b) for b in range(1, max(fits, 1) + 1)]
        throughput = [b / model.decode_time(spec, accelerator, b, b * context, tp) for b in batches]
        assert np.all(np.diff(throughput) >= -1e-12 * np.max(throughput)), (spec.name, accelerator, tp, context)


@pytest.mark.parametrize("seed", range(5))
def test_explicit_coefficients_give_monotone_latency(seed: int) -> None:
    catalog = load_catalog()
    model = InferenceModel(entries={}, default=random_coefficients(seed))
    for name in MODELS:
        for accelerator in ("H100-SXM", "TPU-v4"):
            assert_monotone(model, accelerator, catalog.model(name), tp=[1, 2, 8][seed % 3])


# --- serialisation and overlay ----------------------------------------------------------------------------

def test_round_trip_gives_identical_predictions() -> None:
    catalog = load_catalog()
    model = InferenceModel(entries={"H100-SXM": Entry(HW, random_coefficients(1), frozenset(PREFILL_TERMS),
                                                      {"prefill": 9, "decode": 0, "linear": 0})},
                           default=random_coefficients(2), sources=("a.csv (9 rows)",),
                           errors=(FitError("inference.decode", "fit", 9, 1.0, 2.0, 3.0, "n"),))
    again = InferenceModel.from_dict(yaml.safe_load(yaml.safe_dump(model.to_dict())))
    assert again.errors == model.errors and again.sources == model.sources
    assert again.entries == model.entries and again.default == model.default
    for name in MODELS:
        spec = catalog.model(name)
        for accelerator in ("H100-SXM", "B200"):
            for tp in (1, 4):
                prefill = (spec, accelerator, 777, 3, tp)
                decode = (spec, accelerator, 5, 4000, tp)
                assert again.prefill_time(*prefill) == model.prefill_time(*prefill)
                assert again.decode_time(*decode) == model.decode_time(*decode)
    fitted = model.to_dict()["accelerators"]["H100-SXM"]["coefficients"]
    assert fitted["compute"]["fitted"] is True and fitted["memory"]["fitted"] is False


def test_overlay_replaces_one_accelerator() -> None:
    spec = load_catalog().model("Llama-2-70B")
    a, b, c = random_coefficients(3), random_coefficients(4), random_coefficients(5)
    base = dataclasses.replace(explicit(a, "A100-80GB"), errors=(FitError("inference.decode", "fit", 1, 1, 1, 1),))
    base = base.overlay(explicit(b, "H100-SXM"))
    other = dataclasses.replace(explicit(c, "H100-SXM"), errors=(FitError("inference.decode", "user", 2, 2, 2, 2),))
    merged = base.overlay(other)
    assert merged.entries["H100-SXM"].coefficients == c and merged.entries["A100-80GB"].coefficients == a
    assert merged.decode_time(spec, "h100", 8, 8000, 4) == other.decode_time(spec, "H100-SXM", 8, 8000, 4)
    assert merged.decode_time(spec, "A100", 8, 8000, 4) == base.decode_time(spec, "A100-80GB", 8, 8000, 4)
    assert merged.default == base.default
    assert [e.check for e in merged.errors] == ["fit", "user"]


# --- the fitter on synthetic rows -------------------------------------------------------------------------

def synthetic_rows(model: InferenceModel, accelerator: str, tps: tuple[int, ...] = (1, 2, 4, 8),
                   kinds: tuple[str, ...] = ("prefill", "decode", "linear"), source: str = "synthetic.csv"
                   ) -> list[dict[str, Any]]:
    catalog, rows = load_catalog(), []
    for name in ("Llama-2-7B", "Llama-2-70B"):
        spec = catalog.model(name)
        for tp in tps:
            for batch in (1, 4, 32):
                for tokens in (128, 1024, 4096):
                    time = {"prefill": model.prefill_time(spec, accelerator, tokens, batch, tp),
                            "decode": model.decode_time(spec, accelerator, batch, batch * tokens, tp),
                            "linear": model.linear_time(spec, accelerator, tokens * batch, tp)}
                    for kind in kinds:
                        rows.append(check_row({"kind": kind, "model": name, "accelerator": accelerator, "count": tp,
                                               "batch": 1 if kind == "linear" else batch,
                                               "tokens": tokens * batch if kind == "linear" else tokens,
                                               "time": time[kind], "source": f"{source}: {kind}"}, catalog, "test"))
    return rows


def test_fit_recovers_a_known_model_exactly() -> None:
    truth = random_coefficients(7)
    table = measurement_frame(synthetic_rows(InferenceModel(entries={}, default=truth), "H100-SXM"))
    fitted = fit_inference(table, load_catalog(), cross_validate=False)
    assert set(fitted.entries) == {"H100-SXM"} and fitted.entries["H100-SXM"].fitted == frozenset(TERMS)
    for error in fitted.errors:
        assert error.check == "fit" and error.worst_ape < 1e-3, error.line()


def test_uninformed_coefficients_and_unmeasured_accelerators_take_the_median() -> None:
    catalog = load_catalog()
    one, two = random_coefficients(8), random_coefficients(9)
    rows = synthetic_rows(InferenceModel(entries={}, default=one), "A100-80GB")
    rows += synthetic_rows(InferenceModel(entries={}, default=two), "H100-SXM", tps=(2, 4, 8))
    rows += synthetic_rows(InferenceModel(entries={}, default=two), "B200", tps=(1,), kinds=("decode",))
    fitted = fit_inference(measurement_frame(rows), catalog, cross_validate=False)
    b200 = fitted.entries["B200"]
    assert b200.fitted == frozenset({"decode_overhead", "memory", "decode_compute"})  # no TP, no prefill rows
    assert b200.coefficients["decode_sync"] == fitted.default["decode_sync"]
    assert b200.coefficients["compute"] == fitted.default["compute"]
    for term in ("compute", "decode_sync"):
        informed = [fitted.entries[a].coefficients[term] for a in fitted.entries if term in fitted.entries[a].fitted]
        assert fitted.default[term] == pytest.approx(float(np.median(informed)), rel=1e-5)
    assert not fitted.is_fitted("TPU-v4") and fitted.is_fitted("h100")
    spec = catalog.model("Llama-2-70B")
    assert fitted.decode_time(spec, "TPU-v4", 4, 4000, 8) == pytest.approx(
        InferenceModel(entries={}, default=fitted.default).decode_time(spec, "TPU-v4", 4, 4000, 8))


def test_too_few_points_fail_with_a_clear_message() -> None:
    rows = synthetic_rows(InferenceModel(entries={}, default=random_coefficients(1)), "H100-SXM", tps=(1,),
                          kinds=("decode",))[:3]
    with pytest.raises(CalibrationError, match=r"cannot fit inference decode on H100-SXM .*: 3 measurement points, "
                                               r"need at least 4"):
        fit_inference(measurement_frame(rows), load_catalog())
    with pytest.raises(CalibrationError, match=r"cannot fit the inference model .*: 0 measurement points"):
        fit_inference(measurement_frame([]), load_catalog())


def test_check_rows_are_left_out_of_the_fit() -> None:
    model = InferenceModel(entries={}, default=random_coefficients(2))
    rows = synthetic_rows(model, "H100-SXM")
    wild = [dict(row, time=row["time"] * 3, source="ML.ENERGY benchmark v3 x")
            for row in rows if row["kind"] == "decode"]
    fitted = fit_inference(measurement_frame(rows + wild), load_catalog(), cross_validate=False)
    assert all(error.worst_ape < 1e-3 for error in fitted.errors)
    assert len(fitted.predictions(measurement_frame(rows + wild), load_catalog())) == len(rows)


# --- the shipped datasets ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def measured() -> pd.DataFrame:
    from dcsim.calibration.sources import splitwise, vidur
    return pd.concat([splitwise.read(SHARED_DATA), vidur.read(SHARED_DATA)], ignore_index=True)


@pytest.fixture(scope="module")
def fitted(measured: pd.DataFrame) -> InferenceModel:
    return fit_inference(measured, load_catalog())


@needs_data
def test_splitwise_rows_are_medians_of_the_raw_runs(measured: pd.DataFrame) -> None:
    from dcsim.calibration.sources import splitwise
    skipped: Counter[str] = Counter()
    rows = splitwise.read(SHARED_DATA, skipped)
    assert skipped == {splitwise.SKIP_PCAP: 420, splitwise.SKIP_PEAK: 4}
    assert (rows["kind"] == "prefill").sum() == 102 and (rows["kind"] == "decode").sum() == 150
    raw = pd.read_csv(SHARED_DATA / splitwise.FILE)
    base = raw[(raw.model == "llama2-70b") & (raw.hardware == "a100-80gb") & (raw.tensor_parallel == 4)
               & (raw.prompt_size == 512) & (raw.batch_size == 1)]
    pick = rows[(rows.model == "llama2-70b") & (rows.accelerator == "A100-80GB") & (rows["count"] == 4)
                & (rows.tokens == 512) & (rows.batch == 1) & (rows.kind == "prefill")]
    assert len(base) == 45 and pick["time"].item() == pytest.approx(base.prompt_time.median() / 1000)
    long = base[base.token_size == 1024]
    pick = rows[(rows.model == "llama2-70b") & (rows.accelerator == "A100-80GB") & (rows["count"] == 4)
                & (rows.tokens == 512 + 512) & (rows.kind == "decode")]
    assert pick["time"].item() == pytest.approx(long.token_time.median() / 1000)


@needs_data
def test_vidur_rows_sum_the_linear_ops(measured: pd.DataFrame) -> None:
    from dcsim.calibration.sources import vidur
    rows = measured[measured.kind == "linear"]
    assert len(rows) == 2 * 2 * 13 * 4 and set(rows.tokens) == {2.0**i for i in range(13)}
    raw = pd.read_csv(SHARED_DATA / vidur.FOLDER / "h100" / "meta-llama" / "Llama-2-7b-hf" / "mlp.csv")
    one = raw[(raw.num_tokens == 256) & (raw.num_tensor_parallel_workers == 2)]
    assert len(one) == 1
    per_layer = sum(one[f"time_stats.{op}.median"].item() for op in vidur.LINEAR_OPS)
    pick = rows[(rows.model == "Llama-2-7B") & (rows.accelerator == "H100-SXM") & (rows.tokens == 256)
                & (rows["count"] == 2)]
    assert pick["time"].item() == pytest.approx(per_layer * 32 / 1000)


def error(model: InferenceModel, name: str, check: str) -> FitError:
    return next(e for e in model.errors if e.model == name and e.check == check)


@pytest.fixture(scope="module")
def unbounded(measured: pd.DataFrame) -> InferenceModel:
    """The fit without the roofline bound (issue 15's "before"), to keep its errors comparable."""
    return fit_inference(measured, load_catalog(), bounded=False)


@needs_data
def test_fit_reproduces_the_measurements(fitted: InferenceModel, unbounded: InferenceModel) -> None:
    # Observed (2 accelerators x Splitwise + Vidur), bounded: median APE prefill 14.2%, decode 2.7%,
    # linear 7.4%. Unbounded (before issue 15) decode was 1.6%: the bound memory >= 1 costs about a
    # point in sample (the A100 fit wanted memory 0.75, i.e. 2.7 TB/s on a 2.04 TB/s part). The decode
    # bound was 2.5% before the constraint and is 3% after; the unbounded fit is still held to 2.5%.
    bounds = {"inference.prefill": (16, 60), "inference.decode": (3.0, 25), "inference.linear": (9, 45)}
    for name, (median, worst) in bounds.items():
        fit = error(fitted, name, "fit")
        assert fit.median_ape < median and fit.worst_ape < worst, fit.line()
    assert error(unbounded, "inference.decode", "fit").median_ape < 2.5
    a100 = "A100-80GB"
    assert unbounded.entries[a100].coefficients["memory"] < 1 <= fitted.entries[a100].coefficients["memory"]
    assert set(fitted.entries) == {"A100-80GB", "H100-SXM"}
    # Splitwise decodes at TP 2-8 only: the TP 1 overhead is the accelerator's own GEMM-profile overhead
    for entry in fitted.entries.values():
        assert entry.fitted == frozenset(TERMS) - {"decode_overhead"}
        assert entry.coefficients["decode_overhead"] == entry.coefficients["linear_overhead"]


@needs_data
def test_held_out_models_are_predicted(fitted: InferenceModel, unbounded: InferenceModel) -> None:
    # Observed: hiding BLOOM-176B or Llama-2-70B in turn, median APE prefill 17.0% (16.6% unbounded),
    # decode 16.2% (16.2%): the same bounds hold before and after the roofline constraint.
    for model in (fitted, unbounded):
        for name in ("inference.prefill", "inference.decode"):
            held = error(model, name, "cv: leave one model out")
            assert held.median_ape < 20 and held.mape < 22, held.line()
            assert "hide BLOOM-176B" in held.note and "hide Llama-2-70B" in held.note


@needs_data
@pytest.mark.skipif(not (SHARED_DATA / "mlenergy-benchmark-v3").is_dir(), reason="ML.ENERGY data not found")
def test_mlenergy_check_is_reported(fitted: InferenceModel) -> None:
    check = mlenergy_decode_check(SHARED_DATA, fitted, load_catalog())
    # Observed: n=398, median APE 58.8% (v3 H100 predicted ~1.8x measured, v2 ~0.5x): a weak check.
    assert check.check == "check: ML.ENERGY ITL" and check.points > 350
    assert math.isfinite(check.mape) and check.median_ape < 70, check.line()
    assert "B200 (default coefficients)" in check.note


@needs_data
def test_fitted_model_is_monotone_and_predicts_its_rows(fitted: InferenceModel, measured: pd.DataFrame) -> None:
    catalog = load_catalog()
    for name in MODELS:
        for accelerator in ACCELERATORS:
            assert_monotone(fitted, accelerator, catalog.model(name), tp=8)
    predicted = fitted.predictions(measured, catalog)
    assert list(predicted.columns) == ["family", "kind", "model", "accelerator", "measured", "predicted"]
    assert len(predicted) == len(measured) and (predicted["predicted"] > 0).all()
    assert set(predicted["family"]) == {"inference prefill", "inference decode", "inference linear"}
    assert all(fitted.entries[a].coefficients[t] >= 0 for a in fitted.entries for t in DECODE_TERMS + PREFILL_TERMS)
