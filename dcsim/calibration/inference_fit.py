"""Fitting the LLM inference roofline (calibration/inference.py) to measured rows: one relative-error
non-negative least squares per accelerator and phase, roofline terms bounded below by 1, defaults for
terms no row informs, and the errors kept with the fit (in-sample, leave-one-model-out, and the
independent ML.ENERGY decode check). Kept apart from the model so a run, which only evaluates the
model, never reads this code.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dcsim.calibration.fitting import FitError, ape_stats, require_points
from dcsim.calibration.inference import (
    DECODE_TERMS,
    PREFILL_TERMS,
    ROOFLINE_TERMS,
    TERMS,
    Entry,
    Hardware,
    InferenceModel,
    _bases,
    _fit_rows,
    _records,
    _spec,
    model_shape,
)
from dcsim.catalog import Catalog, ModelSpec
from dcsim.errors import CalibrationError, CatalogError


def _design(rows: list[dict[str, Any]], catalog: Catalog, phase: str) -> tuple[np.ndarray, np.ndarray]:
    features: list[np.ndarray] = []
    times: list[float] = []
    for row in rows:
        spec = _spec(row, catalog)
        if spec is None:
            continue
        s, hw = model_shape(spec), Hardware.of(catalog.accelerators[row["accelerator"]])
        tp, batch, tokens = int(row["count"]), float(row["batch"]), float(row["tokens"])
        prefill, linear, decode = _bases(s, hw, tp)
        if phase == "decode":
            features.append(np.array([1.0, batch, batch * tokens]) @ decode)
        elif row["kind"] == "linear":
            features.append(np.array([1.0, tokens]) @ linear)
        else:
            features.append(np.array([1.0, batch * tokens, batch * tokens**2]) @ prefill)
        times.append(float(row["time"]))
    width = len(DECODE_TERMS if phase == "decode" else PREFILL_TERMS)
    return np.array(features).reshape(-1, width), np.array(times)


def _nnls_relative(features: np.ndarray, times: np.ndarray, lower: np.ndarray | None = None) -> np.ndarray:
    """Least squares on (predicted - measured) / measured with every coefficient >= its `lower` bound
    (0 by default): the bound's share of each time moves to the target and nnls fits the excess.
    Columns are scaled to unit norm."""
    from scipy.optimize import nnls  # only fits need scipy: runs skip its import

    lower = np.zeros(features.shape[1]) if lower is None else lower
    design = features / times[:, None]
    target = 1.0 - design @ lower
    norms = np.linalg.norm(design, axis=0)
    scale = np.where(norms > 0, norms, 1.0)
    coefs, _ = nnls(design / scale, target, maxiter=50 * design.shape[1])
    return coefs / scale + lower


def fit_inference(table: pd.DataFrame, catalog: Catalog, cross_validate: bool = True,
                  bounded: bool = True) -> InferenceModel:
    """Fit per-accelerator coefficients to the prefill, decode and linear rows of `table`; `bounded`
    keeps the roofline terms >= 1 (False only to report what the bound costs, docs/calibration.md)."""
    rows = _fit_rows(table)
    require_points(len(rows), 1, "the inference model (prefill, decode or linear rows)")
    found: dict[str, dict[str, float]] = {}
    informed: dict[str, frozenset[str]] = {}
    points: dict[str, dict[str, int]] = {}
    hardware: dict[str, Hardware] = {}
    for accelerator, part in rows.groupby("accelerator"):
        name = str(accelerator)
        hardware[name] = Hardware.of(catalog.accelerators[name])
        coefs: dict[str, float] = {}
        known: set[str] = set()
        points[name] = {k: int((part["kind"] == k).sum()) for k in ("prefill", "decode", "linear")}
        for phase, terms, kinds in (("prefill", PREFILL_TERMS, ["prefill", "linear"]),
                                    ("decode", DECODE_TERMS, ["decode"])):
            features, times = _design(_records(part[part["kind"].isin(kinds)]), catalog, phase)
            if len(times) == 0:
                continue
            used = np.abs(features).sum(axis=0) > 0
            require_points(len(times), int(used.sum()) + 1, f"inference {phase} on {name} ({' and '.join(kinds)} "
                           "rows with a model the catalog describes)")
            names = np.array(terms)[used]
            bounds = np.array([1.0 if bounded and str(n) in ROOFLINE_TERMS else 0.0 for n in names])
            solved = _nnls_relative(features[:, used], times, bounds)
            for term, value in zip(np.array(terms)[used], solved, strict=True):
                coefs[str(term)] = float(f"{value:.6g}")
                known.add(str(term))
        found[name], informed[name] = coefs, frozenset(known)
    if not found:
        raise CalibrationError("cannot fit the inference model: no prefill, decode or linear row names a model "
                               "the catalog describes (add params for other models)")
    default = {}
    for term in TERMS:
        values = [found[name][term] for name in found if term in informed[name]]
        default[term] = (float(f"{np.median(values):.6g}") if values
                         else 1.0 if bounded and term in ROOFLINE_TERMS else 0.0)
    if not any("decode_overhead" in informed[name] for name in found):
        # No one-accelerator decode rows (the shipped data: Splitwise decodes at TP 2-8 only): the
        # per-layer fixed time of a TP 1 step is taken from the one-accelerator GEMM profiles (linear
        # rows), not from tensor-parallel steps, whose fixed time includes their all-reduces.
        default["decode_overhead"] = default["linear_overhead"]
    entries = {name: Entry(hardware[name], _complete(found[name], informed[name], default), informed[name],
                           points[name]) for name in found if informed[name]}
    sources = tuple(f"{name} ({count} rows)" for name, count in
                    rows["source"].astype(str).str.split(":").str[0].value_counts().sort_index().items())
    model = InferenceModel(entries=entries, default=default, sources=sources)
    errors = _in_sample(model, table, catalog)
    if cross_validate:
        errors.extend(leave_one_model_out(table, catalog, bounded))
    return model.with_errors(*errors)


def _complete(found: dict[str, float], informed: frozenset[str], default: dict[str, float]) -> dict[str, float]:
    """Every coefficient: fitted here, else the default; a TP 1 decode overhead the rows could not
    inform comes from this accelerator's own one-accelerator GEMM profiles where it has them."""
    coefficients = {t: found.get(t, default[t]) for t in TERMS}
    if "decode_overhead" not in informed and "linear_overhead" in informed:
        coefficients["decode_overhead"] = found["linear_overhead"]
    return coefficients


def _in_sample(model: InferenceModel, table: pd.DataFrame, catalog: Catalog) -> list[FitError]:
    predicted = model.predictions(table, catalog)
    note = f"fitted on {', '.join(sorted(model.entries))}; other accelerators use the median coefficients"
    return [ape_stats(f"inference.{kind}", "fit", part["predicted"], part["measured"], note=note)
            for kind in ("prefill", "decode", "linear") if len(part := predicted[predicted["kind"] == kind])]


def leave_one_model_out(table: pd.DataFrame, catalog: Catalog, bounded: bool = True) -> list[FitError]:
    """Hide every row of one model (all kinds), refit, predict its prefill and decode rows."""
    rows = _fit_rows(table)
    models = {str(m): spec.name for m in rows["model"].unique() if (spec := _spec({"model": m}, catalog))}
    canonical = rows["model"].map(lambda m: models.get(str(m), str(m)))
    results: dict[str, list[pd.DataFrame]] = {"prefill": [], "decode": []}
    notes: list[str] = []
    for name in sorted(set(canonical[rows["kind"].isin(["prefill", "decode"])])):
        hidden = canonical == name
        try:
            model = fit_inference(rows[~hidden], catalog, cross_validate=False, bounded=bounded)
        except CalibrationError as exc:
            notes.append(f"{name}: not hidden ({exc})")
            continue
        predicted = model.predictions(rows[hidden & rows["kind"].isin(["prefill", "decode"])], catalog)
        medians = []
        for kind in results:
            part = predicted[predicted["kind"] == kind]
            if len(part):
                results[kind].append(part)
                medians.append(f"{kind} {ape_stats('', '', part['predicted'], part['measured']).median_ape:.0f}%")
        notes.append(f"hide {name}: median {', '.join(medians)}")
    errors: list[FitError] = []
    for kind, frames in results.items():
        if frames:
            frame = pd.concat(frames)
            errors.append(ape_stats(f"inference.{kind}", "cv: leave one model out", frame["predicted"],
                                    frame["measured"], note="; ".join(notes)))
    return errors


V3 = Path("mlenergy-benchmark-v3") / "llm_configurations.csv"
V2 = Path("mlenergy-leaderboard-v2") / "llm_text_generation.csv"
_BILLIONS = re.compile(r"(?<![\dx.])(\d+(?:\.\d+)?)b(?![a-z])", re.IGNORECASE)


def mlenergy_decode_check(data: Path, model: InferenceModel, catalog: Catalog) -> FitError:
    """Predicted decode iteration time vs ML.ENERGY inter-token latency (v3 median ITL, v2 mean TPOT).

    Dense 16-bit transformers without pipeline or data parallelism only. Neither file gives prompt
    lengths, so the context per request is taken as half the mean output length: an undercount by
    the mean prompt, which makes the prediction a lower bound on the memory term. Models missing
    from the catalog get a shape estimated from their parameter count (v3 column, or the v2 name).
    """
    pairs: list[tuple[str, float, float]] = []  # dataset and accelerator, predicted, measured
    skipped = 0
    for path, version in ((data / V3, 3), (data / V2, 2)):
        with path.open(newline="") as handle:
            for record in csv.DictReader(handle):
                case = _mlenergy_case(record, version, catalog)
                if case is None:
                    skipped += 1
                    continue
                spec, accelerator, tp, batch, context, measured = case
                fitted = "" if model.is_fitted(accelerator) else " (default coefficients)"
                pairs.append((f"v{version} {accelerator}{fitted}",
                              model.decode_time(spec, accelerator, batch, batch * context, tp), measured))
    if not pairs:
        raise CalibrationError(f"{data}: no usable ML.ENERGY rows for the decode check")
    groups = []
    for group in sorted({g for g, _, _ in pairs}, reverse=True):
        ratio = [p / m for g, p, m in pairs if g == group]
        groups.append(f"{group} n={len(ratio)} median predicted/measured {np.median(ratio):.2f}")
    return ape_stats("inference.decode", "check: ML.ENERGY ITL", [p for _, p, _ in pairs],
                     [m for _, _, m in pairs],
                     note=f"{'; '.join(groups)}; {skipped} rows skipped (MoE, hybrid, 8-bit or lower, pipeline or "
                          "data parallel, unknown size); context = output/2 per request")


def _mlenergy_case(record: dict[str, str], version: int, catalog: Catalog
                   ) -> tuple[ModelSpec, str, int, float, float, float] | None:
    if version == 3:
        if (record["architecture"] != "Dense Transformer" or record["weight_precision"] != "bfloat16"
                or int(record["data_parallel"]) > 1 or int(record["expert_parallel"]) > 1):
            return None
        name, gpu, tp = record["model_id"], record["gpu_model"], int(record["tensor_parallel"])
        params: float | None = float(record["total_params_billions"]) * 1e9
        output, measured = float(record["avg_output_len"]), float(record["median_itl_ms"]) / 1000.0
    else:
        if int(record["pp"]) > 1:
            return None
        name, gpu, tp = record["model"], record["gpu"], int(record["tp"])
        match = _BILLIONS.search(name.rsplit("/", 1)[-1])
        params = float(match.group(1)) * 1e9 if match else None
        output, measured = float(record["avg_output_tokens"]), float(record["avg_tpot_s"])
    canonical = catalog.canonical_model(name)
    if canonical is not None:
        spec = catalog.models[canonical]
    elif params is not None:
        spec = ModelSpec(name=name, family="llm", kind="llm", params=params, source="ML.ENERGY parameter count")
    else:
        return None
    if spec.active_params is not None and spec.active_params != spec.params:
        return None  # mixture of experts
    try:
        accelerator = catalog.canonical_accelerator(gpu)
    except CatalogError:
        return None
    return spec, accelerator, tp, float(record["avg_batch_size"]), output / 2.0, measured
