"""LLM inference latency: a roofline of FLOPs, bytes and synchronisation, with fitted multipliers.

Per accelerator, with P = parameters used per token, W = 2 x total params bytes (16-bit weights),
L layers, d hidden size, tp tensor-parallel degree, peak / bw / link the catalog's 16-bit FLOP/s,
memory bandwidth and interconnect bandwidth (all per accelerator):

  prefill(n prompt tokens, B requests) = L x prefill_overhead
      + compute     x 2 P B n / (tp peak)            (the weight GEMMs)
      + attention   x 2 L d B n^2 / (tp peak)        (causal QK^T and AV)
      + weight_read x W / (tp bw)
      + comm        x 2 L x 2 (tp-1)/tp x B n d x 2 bytes / link   (two ring all-reduces per layer)
      + sync        x 4 L (tp-1)                     (their 2 (tp-1) latency-bound steps, each)
  decode(B requests, C = context tokens summed over the batch) = L x decode_overhead         (tp = 1)
                                                               or L x decode_tp_overhead      (tp > 1)
      + memory      x (W + kv_bytes_per_token x C) / (tp bw)
      + decode_compute x (2 P B + 4 L d C) / (tp peak)
      + decode_sync x 4 L (tp-1)
  linear(n tokens) = L x linear_overhead + compute x 2 P n / (tp peak) + weight_read x W / (tp bw)

Every coefficient is >= 0 (scipy nnls), so prefill time never falls as the prompt grows and decode
throughput B / decode(B, B c) never falls as the batch grows. The roofline terms are bounded below
by 1 (ROOFLINE_TERMS: compute, attention, memory, decode_compute): a coefficient is 1 / efficiency,
and no kernel beats its datasheet peak, so no modelled prefill is faster than its FLOPs over peak
FLOP/s and no decode step faster than its bytes over peak memory bandwidth. Before this bound
(issue 15) the A100 memory coefficient came out at 0.753 (2.7 TB/s, above the A100's 2.04 TB/s),
offset by a per-layer overhead that the 70B tensor-parallel rows inflated; docs/calibration.md
gives the errors before and after. The overheads are per layer because
kernel launches and synchronisations are. `compute`, `weight_read` and `memory` are 1 / efficiency.
Linear rows (GEMM-only profiles) share compute and weight_read with prefill, which lets them inform
small models and TP 1; their own overhead is separate. Decode streams every weight (W counts all
experts of a mixture-of-experts model: exact for dense models, an upper bound for MoE at small batch).

The fit is per accelerator and in relative-error space (each row divided by its measured time). A
coefficient that an accelerator's rows cannot inform (its column is all zero, e.g. sync without TP)
takes the default: the median of that coefficient over the accelerators that informed it. The
default also serves accelerators without measurements, marked so in to_dict and the error notes.
Decode rows from ML.ENERGY (source starting with "ML.ENERGY") are left out of the fit: they are in
the table for the power model, their context lengths are not known, and mlenergy_decode_check uses
them as an independent check instead. Errors kept: the in-sample fit per kind, and leave-one-model-out
(hide every row of one model, refit, predict its prefill and decode rows; for the shipped data:
BLOOM-176B from Llama-2, and Llama-2-70B from BLOOM-176B plus the Llama-2-7B linear rows).

Models known only by parameter count (llm-<N>b) get an estimated shape: d = 128 L and P = 12 L d^2
(GPT-3 and Llama-2-7B/13B have d / L = 128), and multi-head attention, so their KV cache is an upper
bound (grouped-query models hold 4-8x less).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dcsim.calibration.fitting import FitError
from dcsim.calibration.precision import Precision
from dcsim.calibration.table import row_model
from dcsim.catalog import AcceleratorSpec, Catalog, ModelSpec, load_catalog
from dcsim.errors import CalibrationError, CatalogError

PREFILL_TERMS = ("prefill_overhead", "compute", "attention", "weight_read", "comm", "sync", "linear_overhead")
DECODE_TERMS = ("decode_overhead", "memory", "decode_compute", "decode_sync", "decode_tp_overhead")
TERMS = PREFILL_TERMS + DECODE_TERMS
ROOFLINE_TERMS = frozenset({"compute", "attention", "memory", "decode_compute"})  # 1 / efficiency: >= 1
CHECK_SOURCES = ("ML.ENERGY",)  # row sources kept out of the fit (independent check data)
BYTES_PER_PARAM = 2.0
HIDDEN_PER_LAYER = 128.0  # estimated shape: d = 128 L
COLUMNS = ["family", "kind", "model", "accelerator", "measured", "predicted"]


@dataclass(frozen=True)
class Shape:
    """What the roofline needs of a model; `estimated` when derived from the parameter count."""

    params: float
    compute_params: float
    layers: float
    hidden: float
    kv_bytes_per_token: float
    estimated: bool


def model_shape(model: ModelSpec) -> Shape:
    if model.kind != "llm":  # a DNN may carry a parameter count (for its gradients) but has no LLM shape
        raise CalibrationError(f"model {model.name!r} is not an LLM with a parameter count (kind {model.kind})")
    try:
        compute = model.compute_params
    except CatalogError as exc:
        raise CalibrationError(f"model {model.name!r} is not an LLM with a parameter count ({exc})") from None
    params = model.params or compute
    layers, hidden = model.layers, model.hidden
    if layers and hidden:
        heads = model.heads or hidden / HIDDEN_PER_LAYER
        kv_share = (model.kv_heads or heads) / heads
        return Shape(params, compute, float(layers), float(hidden), 2.0 * layers * hidden * kv_share * 2.0, False)
    layers_f = (compute / (12.0 * hidden**2) if hidden else float(layers) if layers
                else (compute / (12.0 * HIDDEN_PER_LAYER**2)) ** (1.0 / 3.0))
    hidden_f = float(hidden) if hidden else math.sqrt(compute / (12.0 * layers_f))
    return Shape(params, compute, layers_f, hidden_f, 4.0 * layers_f * hidden_f, True)


def kv_bytes_per_token(model: ModelSpec) -> float:
    """16-bit K and V of one token over all layers: 2 x layers x kv_heads x head_dim x 2 bytes."""
    return model_shape(model).kv_bytes_per_token


def weight_bytes(model: ModelSpec) -> float:
    """16-bit weights of all parameters (every expert of a mixture-of-experts model is resident)."""
    return model_shape(model).params * BYTES_PER_PARAM


class IterationConstants(NamedTuple):
    """prefill(n tokens, B requests) = prefill_fixed + B (prefill_token n + prefill_token_sq n^2);
    decode(B requests, C context tokens) = decode_fixed + decode_request B + decode_context C (seconds)."""

    prefill_fixed: float
    prefill_token: float
    prefill_token_sq: float
    decode_fixed: float
    decode_request: float
    decode_context: float


@dataclass(frozen=True)
class Hardware:
    peak: float  # 16-bit FLOP/s
    bandwidth: float  # memory bytes/s
    link: float  # interconnect bytes/s

    @classmethod
    def of(cls, spec: AcceleratorSpec) -> Hardware:
        if spec.memory_bandwidth is None or spec.interconnect_bandwidth is None:
            raise CalibrationError(f"accelerator {spec.name}: the catalog gives no memory or interconnect "
                                   "bandwidth, which the inference model needs")
        return cls(spec.peak_fp16_flops.value, spec.memory_bandwidth.value, spec.interconnect_bandwidth.value)


def _bases(s: Shape, hw: Hardware, tp: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time of each term per unit coefficient, as rows over the workload variables:
    prefill [1, B n, B n^2] x PREFILL_TERMS, linear [1, n] x PREFILL_TERMS, decode [1, B, C] x DECODE_TERMS."""
    gemm, weights = 2.0 * s.compute_params / (tp * hw.peak), s.params * BYTES_PER_PARAM / (tp * hw.bandwidth)
    steps = 4.0 * s.layers * (tp - 1)
    prefill = np.array([[s.layers, 0, 0, weights, 0, steps, 0],
                        [0, gemm, 0, 0, 4.0 * s.layers * (tp - 1) / tp * s.hidden * BYTES_PER_PARAM / hw.link, 0, 0],
                        [0, 0, 2.0 * s.layers * s.hidden / (tp * hw.peak), 0, 0, 0, 0]])
    linear = np.array([[0, 0, 0, weights, 0, 0, s.layers], [0, gemm, 0, 0, 0, 0, 0]])
    one, many = (s.layers, 0.0) if tp == 1 else (0.0, s.layers)  # per-layer overheads: per TP configuration
    decode = np.array([[one, weights, 0, steps, many],
                       [0, 0, gemm, 0, 0],
                       [0, s.kv_bytes_per_token / (tp * hw.bandwidth), 4.0 * s.layers * s.hidden / (tp * hw.peak),
                        0, 0]])
    return prefill, linear, decode


@dataclass(frozen=True)
class Entry:
    """One fitted accelerator: its hardware figures, coefficients, and which were fitted here."""

    hardware: Hardware
    coefficients: dict[str, float]
    fitted: frozenset[str]
    points: dict[str, int]


@dataclass(frozen=True)
class InferenceModel:
    entries: dict[str, Entry]
    default: dict[str, float]  # median of the fitted accelerators, for everything else
    sources: tuple[str, ...] = ()
    errors: tuple[FitError, ...] = ()
    catalog: Catalog | None = field(default=None, repr=False, compare=False)  # None: the shipped catalog
    _cache: dict[tuple[Any, ...], tuple[float, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def prefill_time(self, model: ModelSpec, accelerator: str, prompt_tokens: float, batch: float = 1,
                     tp: int = 1) -> float:
        """Seconds to prefill `batch` prompts of `prompt_tokens` each on `tp` accelerators."""
        k = self._cache.get((model, accelerator, tp)) or self._constants(model, accelerator, tp)
        tokens = batch * prompt_tokens
        return k[0] + k[1] * tokens + k[2] * tokens * prompt_tokens

    def decode_time(self, model: ModelSpec, accelerator: str, batch: float, context_tokens: float,
                    tp: int = 1) -> float:
        """Seconds of one decode iteration; `context_tokens` is the sum of the requests' contexts."""
        k = self._cache.get((model, accelerator, tp)) or self._constants(model, accelerator, tp)
        return k[3] + k[4] * batch + k[5] * context_tokens

    def iteration_constants(self, model: ModelSpec, accelerator: str, tp: int = 1,
                            precision: Precision | None = None) -> IterationConstants:
        """The coefficients of prefill_time and decode_time, for simulators that sum many iterations;
        `precision` other than BF16 scales weight and KV bytes and the GEMM peak (calibration/precision.py)."""
        if precision is not None and not precision.is_reference:
            key = (model, accelerator, tp, precision)
            return IterationConstants(*(self._cache.get(key) or self._constants(model, accelerator, tp, precision))[:6])
        k = self._cache.get((model, accelerator, tp)) or self._constants(model, accelerator, tp)
        return IterationConstants(*k[:6])

    def linear_time(self, model: ModelSpec, accelerator: str, tokens: float, tp: int = 1) -> float:
        """Seconds of the weight GEMMs of one forward pass over `tokens` tokens."""
        k = self._cache.get((model, accelerator, tp)) or self._constants(model, accelerator, tp)
        return k[6] + k[7] * tokens

    def is_fitted(self, accelerator: str) -> bool:
        return self._canonical(accelerator) in self.entries

    def _catalog(self) -> Catalog:
        return self.catalog if self.catalog is not None else load_catalog()

    def _canonical(self, accelerator: str) -> str:
        if accelerator in self.entries:
            return accelerator
        try:
            return self._catalog().canonical_accelerator(accelerator)
        except CatalogError as exc:
            raise CalibrationError(str(exc)) from None

    def _constants(self, model: ModelSpec, accelerator: str, tp: int,
                   precision: Precision | None = None) -> tuple[float, ...]:
        if tp < 1 or int(tp) != tp:
            raise CalibrationError(f"tensor parallelism must be a whole number >= 1, got {tp!r}")
        name = self._canonical(accelerator)
        entry = self.entries.get(name)
        if entry is not None:
            hw, coefs = entry.hardware, entry.coefficients
        else:  # extrapolated: this part's datasheet figures, a measured relative's efficiencies or the default
            spec = self._catalog().accelerators[name]
            relative = self.entries.get(spec.like) if spec.like else None
            hw, coefs = Hardware.of(spec), (relative.coefficients if relative is not None else self.default)
        s = model_shape(model)
        if precision is not None:  # fewer weight and KV bytes; weight GEMMs at that precision's peak
            speedup = precision.gemm_speedup(self._catalog().accelerators[name])
            s = replace(s, params=s.params * precision.weight_scale, compute_params=s.compute_params / speedup,
                        kv_bytes_per_token=s.kv_bytes_per_token * precision.kv_scale)
        p, d = np.array([coefs[t] for t in PREFILL_TERMS]), np.array([coefs[t] for t in DECODE_TERMS])
        prefill, linear, decode = _bases(s, hw, tp)
        k = (*(prefill @ p), *(decode @ d), *(linear @ p))
        constants = tuple(float(v) for v in k)
        self._cache[(model, accelerator, tp) if precision is None else (model, accelerator, tp, precision)] = constants
        return constants

    def predict_row(self, row: Mapping[str, Any], spec: ModelSpec) -> float:
        """Predicted time of one measurement-table row of kind prefill, decode or linear."""
        acc, tp, batch, tokens = str(row["accelerator"]), int(row["count"]), float(row["batch"]), float(row["tokens"])
        if row["kind"] == "prefill":
            return self.prefill_time(spec, acc, tokens, batch, tp)
        if row["kind"] == "decode":
            return self.decode_time(spec, acc, batch, batch * tokens, tp)
        return self.linear_time(spec, acc, tokens, tp)

    def predictions(self, table: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
        """Predicted vs measured time of every fit row whose model the catalog can describe."""
        out = []
        for row in _records(_fit_rows(table)):
            spec = _spec(row, catalog)
            if spec is not None:
                out.append({"family": f"inference {row['kind']}", "kind": row["kind"], "model": spec.name,
                            "accelerator": row["accelerator"], "measured": row["time"],
                            "predicted": self.predict_row(row, spec)})
        return pd.DataFrame(out, columns=COLUMNS)

    def with_errors(self, *errors: FitError) -> InferenceModel:
        return replace(self, errors=self.errors + errors)

    def overlay(self, other: InferenceModel) -> InferenceModel:
        """Terms fitted in `other` replace this one's, per accelerator; terms `other` could not fit (a
        prefill-only overlay has no decode terms) keep this model's value, or its default."""
        entries = dict(self.entries)
        for name, entry in other.entries.items():
            base = entries.get(name)
            keep = base.coefficients if base is not None else self.default
            coefficients = {t: entry.coefficients[t] if t in entry.fitted else keep[t] for t in TERMS}
            fitted = entry.fitted | (base.fitted if base is not None else frozenset())
            entries[name] = Entry(entry.hardware, coefficients, frozenset(fitted),
                                  {**(base.points if base is not None else {}), **entry.points})
        return InferenceModel(entries=entries, default=self.default,
                              sources=self.sources + tuple(s for s in other.sources if s not in self.sources),
                              errors=self.errors + other.errors, catalog=self.catalog)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "roofline terms x fitted multipliers (dcsim/calibration/inference.py)",
            "sources": list(self.sources),
            "accelerators": {name: {
                "peak_flops": e.hardware.peak, "memory_bandwidth": e.hardware.bandwidth,
                "interconnect_bandwidth": e.hardware.link, "points": dict(e.points),
                "coefficients": {t: {"value": e.coefficients[t], "fitted": t in e.fitted} for t in TERMS},
            } for name, e in sorted(self.entries.items())},
            "default": {"note": "median of the fitted accelerators; used for every accelerator not listed "
                                "and for coefficients marked fitted: false",
                        "coefficients": {t: self.default[t] for t in TERMS}},
            "errors": [error.to_dict() for error in self.errors],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> InferenceModel:
        entries = {}
        for name, e in raw.get("accelerators", {}).items():
            raw_coefs = _with_tp_overhead(e["coefficients"])
            coefs = {t: float(raw_coefs[t]["value"]) for t in TERMS}
            fitted = frozenset(t for t in TERMS if raw_coefs[t]["fitted"])
            hw = Hardware(float(e["peak_flops"]), float(e["memory_bandwidth"]), float(e["interconnect_bandwidth"]))
            entries[str(name)] = Entry(hw, coefs, fitted, {k: int(v) for k, v in e.get("points", {}).items()})
        default = dict(raw["default"]["coefficients"])
        default.setdefault("decode_tp_overhead", default["decode_overhead"])
        return cls(entries=entries, default={t: float(default[t]) for t in TERMS},
                   sources=tuple(raw.get("sources", [])),
                   errors=tuple(FitError.from_dict(e) for e in raw.get("errors", [])))


def _with_tp_overhead(coefficients: Mapping[str, Any]) -> Mapping[str, Any]:
    """Overlays written before issue 15 had one decode overhead for every TP degree: it becomes both."""
    if "decode_tp_overhead" in coefficients:
        return coefficients
    return {**coefficients, "decode_tp_overhead": coefficients["decode_overhead"]}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _fit_rows(table: pd.DataFrame) -> pd.DataFrame:
    rows = table[table["kind"].isin(["prefill", "decode", "linear"])]
    return rows[~rows["source"].astype(str).str.startswith(CHECK_SOURCES)]


def _spec(row: Mapping[str, Any], catalog: Catalog) -> ModelSpec | None:
    try:
        spec = row_model(row, catalog)
        model_shape(spec)
    except (CatalogError, CalibrationError):
        return None
    return spec
