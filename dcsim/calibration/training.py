"""Training compute time per step: measured where a measurement exists, predicted elsewhere.

Two paths, chosen by the model:
- Measured networks (Gavel's and Pollux's models, or a user's): on each accelerator the model was
  measured on (an "anchor"), step time = t0 + t1 x per-accelerator batch, fitted to its one-GPU
  rows. On any other accelerator the nearest anchor (by memory bandwidth) is scaled by
  (bandwidth_anchor / bandwidth) ** alpha, with alpha fitted per model across its anchors (a
  CPU-bound model that barely speeds up gets a small alpha). A model measured on one accelerator
  only borrows the median alpha of its family. Memory bandwidth, not 16-bit peak FLOP/s, is the
  regressor because it predicts Gavel's hidden accelerators far better: leave-one-accelerator-out
  median error 29% with bandwidth against 74% with 16-bit peak and 51% with FP32 peak (measured
  when this model was chosen; `dcsim calibration report` prints the current figure).
- Transformer LLMs (catalog LLMs or llm-<N>b): step time = 6 x params x tokens x batch /
  (MFU x peak), with the model FLOP utilisation fitted per accelerator (MaxText's TPU figures); an
  accelerator without LLM measurements uses the median MFU of those with.
The leave-one-accelerator-out check hides every measurement of one accelerator, refits, and
predicts the hidden one-accelerator rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dcsim.calibration.fitting import FitError, ape_stats, require_points
from dcsim.calibration.table import row_model
from dcsim.catalog import Catalog, ModelSpec
from dcsim.errors import CalibrationError, CatalogError

DEFAULT_LLM_TOKENS = 2048.0
LLM_FLOPS_PER_PARAM_TOKEN = 6.0  # forward + backward of a dense transformer, attention ignored


@dataclass(frozen=True)
class Anchor:
    """Compute time of one model on one measured accelerator: t0 + t1 x batch seconds per step."""

    t0: float
    t1: float
    batch: float  # median measured batch: the batch relative speeds are quoted at
    points: int

    def time(self, batch: float) -> float:
        return self.t0 + self.t1 * batch


@dataclass(frozen=True)
class ModelFit:
    model: str
    family: str
    alpha: float
    alpha_basis: str  # how alpha was obtained
    anchors: dict[str, Anchor]


@dataclass(frozen=True)
class TrainingModel:
    models: dict[str, ModelFit]
    mfu: dict[str, float]  # LLM model FLOP utilisation per accelerator
    default_mfu: float
    catalog: Catalog = field(repr=False, compare=False)
    errors: tuple[FitError, ...] = ()

    def compute_time(self, model: str | ModelSpec, accelerator: str, batch: float | None = None,
                     tokens: float | None = None) -> float:
        """Seconds one accelerator needs for the compute of one step of `batch` samples."""
        spec = model if isinstance(model, ModelSpec) else self.spec(model)
        fit = self.models.get(spec.name)
        if fit is not None:
            anchor_name = self._nearest_anchor(fit, accelerator)
            anchor = fit.anchors[anchor_name]
            time = anchor.time(anchor.batch if batch is None else batch)
            return time * (self._bandwidth(anchor_name) / self._bandwidth(accelerator)) ** fit.alpha
        if spec.kind == "llm":
            flops = LLM_FLOPS_PER_PARAM_TOKEN * spec.compute_params * (tokens or DEFAULT_LLM_TOKENS) * (batch or 1.0)
            return flops / (self.llm_mfu(accelerator) * self._peak(accelerator))
        raise CalibrationError(f"no training measurements for model {spec.name!r}: fit some with "
                               "`dcsim calibration fit` and name the overlay in the scenario")

    def llm_mfu(self, accelerator: str) -> float:
        """Fitted LLM FLOP utilisation: the accelerator's own, its `like` relative's, or the median."""
        if accelerator in self.mfu:
            return self.mfu[accelerator]
        like = self.catalog.accelerators[accelerator].like
        return self.mfu.get(like, self.default_mfu) if like else self.default_mfu

    def relative_speed(self, model: str, accelerator: str, reference: str, batch: float | None = None) -> float:
        """Throughput on `accelerator` over throughput on `reference` at `batch` samples per step (None:
        the model's median measured batch, the batch of its anchors)."""
        return self.compute_time(model, reference, batch) / self.compute_time(model, accelerator, batch)

    def model_names(self) -> list[str]:
        return sorted(self.models)

    def has_model(self, name: str) -> bool:
        if name in self.models:
            return True
        try:
            return self.spec(name).kind == "llm"
        except CalibrationError:
            return False

    def spec(self, name: str) -> ModelSpec:
        """The model a name denotes: catalog entry, overlay-only network, or llm-<N>b."""
        canonical = self.catalog.canonical_model(name)
        if canonical is not None:
            return self.catalog.models[canonical]
        if name in self.models:  # a user's own model, known from an overlay only
            return ModelSpec(name=name, family=self.models[name].family, kind="dnn", source="calibration overlay")
        try:
            return self.catalog.model(name)  # llm-<N>b
        except CatalogError as exc:
            raise CalibrationError(str(exc)) from None

    def _peak(self, accelerator: str) -> float:
        return self.catalog.accelerators[accelerator].peak_fp16_flops.value

    def _bandwidth(self, accelerator: str) -> float:
        return _bandwidth(self.catalog, accelerator)

    def _nearest_anchor(self, fit: ModelFit, accelerator: str) -> str:
        return nearest_by_bandwidth(self.catalog, fit.anchors, accelerator)

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": {name: {"family": fit.family, "alpha": round6(fit.alpha), "alpha_basis": fit.alpha_basis,
                              "anchors": {acc: {"t0_s": round6(a.t0), "t1_s_per_sample": round6(a.t1), "batch": a.batch,
                                                "points": a.points} for acc, a in sorted(fit.anchors.items())}}
                       for name, fit in sorted(self.models.items())},
            "llm_mfu": {acc: round6(value) for acc, value in sorted(self.mfu.items())},
            "llm_default_mfu": round6(self.default_mfu),
            "errors": [error.to_dict() for error in self.errors],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], catalog: Catalog) -> TrainingModel:
        models = {name: ModelFit(name, entry["family"], float(entry["alpha"]), entry["alpha_basis"],
                                 {acc: Anchor(float(a["t0_s"]), float(a["t1_s_per_sample"]), float(a["batch"]),
                                              int(a["points"])) for acc, a in entry["anchors"].items()})
                  for name, entry in raw.get("models", {}).items()}
        return cls(models=models, mfu={k: float(v) for k, v in raw.get("llm_mfu", {}).items()},
                   default_mfu=float(raw.get("llm_default_mfu", 0.0)), catalog=catalog,
                   errors=tuple(FitError.from_dict(e) for e in raw.get("errors", [])))

    def overlay(self, other: TrainingModel) -> TrainingModel:
        """Anchors and MFUs measured in `other` replace this one's per accelerator; a model's alpha comes
        from `other` only if it was fitted there across accelerators (else this one's is kept)."""
        models = dict(self.models)
        for name, fit in other.models.items():
            base = models.get(name)
            if base is None:
                models[name] = fit
                continue
            alpha, basis = ((fit.alpha, fit.alpha_basis) if fit.alpha_basis.startswith("fitted")
                            else (base.alpha, base.alpha_basis))
            models[name] = ModelFit(name, base.family, alpha, basis, {**base.anchors, **fit.anchors})
        return TrainingModel(models=models, mfu={**self.mfu, **other.mfu},
                             default_mfu=self.default_mfu, catalog=self.catalog,
                             errors=self.errors + other.errors)

    def predictions(self, table: pd.DataFrame) -> pd.DataFrame:
        """Predicted vs measured compute time of every one-accelerator training row."""
        rows = _single(table)
        out = []
        for row in rows.to_dict("records"):
            spec = row_model(row, self.catalog, custom=True)
            if not (spec.name in self.models or spec.kind == "llm"):
                continue
            out.append({"family": f"training {spec.family}", "kind": "training", "model": spec.name,
                        "accelerator": row["accelerator"], "measured": row["time"],
                        "predicted": self.compute_time(spec, row["accelerator"], row["batch"], row_tokens(row))})
        return pd.DataFrame(out, columns=["family", "kind", "model", "accelerator", "measured", "predicted"])


def fit_training(table: pd.DataFrame, catalog: Catalog, cross_validate: bool = True) -> TrainingModel:
    """Fit the compute model to the one-accelerator `training` rows (other rows are ignored)."""
    rows = _single(table)
    require_points(len(rows), 1, "the training model (one-accelerator training rows)")
    models: dict[str, ModelFit] = {}
    mfus: dict[str, list[float]] = {}
    specs = {str(name): row_model(group.iloc[0].to_dict(), catalog, custom=True)
             for name, group in rows.groupby("model")}
    for name, group in rows.groupby("model"):
        spec = specs[str(name)]
        if spec.kind == "llm":
            for row in group.to_dict("records"):
                flops = LLM_FLOPS_PER_PARAM_TOKEN * spec.compute_params * row_tokens(row) * row["batch"]
                peak = catalog.accelerators[row["accelerator"]].peak_fp16_flops.value
                mfus.setdefault(row["accelerator"], []).append(flops / (row["time"] * peak))
            continue
        anchors = {str(acc): _fit_anchor(part, f"{name} on {acc}") for acc, part in group.groupby("accelerator")}
        models[spec.name] = ModelFit(spec.name, spec.family, 0.0, "", anchors)
    models = _with_alphas(models, catalog)
    mfu = {acc: float(np.median(values)) for acc, values in mfus.items()}
    default_mfu = float(np.median(list(mfu.values()))) if mfu else 0.4
    model = TrainingModel(models=models, mfu=mfu, default_mfu=default_mfu, catalog=catalog)
    predicted = model.predictions(table)
    errors = [ape_stats("training", "fit (one accelerator)", predicted["predicted"], predicted["measured"])]
    if cross_validate:
        errors.extend(leave_one_accelerator_out(table, catalog))
    return TrainingModel(models=models, mfu=mfu, default_mfu=default_mfu, catalog=catalog, errors=tuple(errors))


def leave_one_accelerator_out(table: pd.DataFrame, catalog: Catalog) -> list[FitError]:
    """Hide each accelerator in turn, refit on the rest, predict its one-accelerator rows."""
    rows = _single(table)
    predicted: list[float] = []
    measured: list[float] = []
    per_accelerator: list[str] = []
    for accelerator in sorted(rows["accelerator"].unique()):
        rest = table[table["accelerator"] != accelerator]
        try:
            model = fit_training(rest, catalog, cross_validate=False)
        except CalibrationError:
            continue
        hidden = model.predictions(rows[rows["accelerator"] == accelerator])
        # A model measured only on the hidden accelerator has nothing left to predict from.
        known = hidden["model"].map(model.has_model)
        hidden = hidden[known]
        if hidden.empty:
            continue
        predicted.extend(hidden["predicted"])
        measured.extend(hidden["measured"])
        stats = ape_stats("training", f"cv: hide {accelerator}", hidden["predicted"], hidden["measured"])
        per_accelerator.append(f"{accelerator} {stats.median_ape:.0f}%/{stats.worst_ape:.0f}%")
    if not measured:
        return []
    return [ape_stats("training", "cv: leave one accelerator out", predicted, measured,
                      note="median/worst per hidden accelerator: " + ", ".join(per_accelerator))]


def _fit_anchor(rows: pd.DataFrame, what: str) -> Anchor:
    from scipy.optimize import nnls  # only fits need scipy: runs skip its import

    require_points(len(rows), 1, f"the compute time of {what}")
    batch, time = rows["batch"].to_numpy(), rows["time"].to_numpy()
    if len(np.unique(batch)) == 1:
        t1 = float(np.exp(np.mean(np.log(time / batch))))
        return Anchor(0.0, t1, float(batch[0]), len(rows))
    design = np.column_stack([np.ones_like(batch), batch]) / time[:, None]  # relative error
    (t0, t1), _ = nnls(design, np.ones_like(time))
    return Anchor(float(t0), float(t1), float(np.median(batch)), len(rows))


def nearest_by_bandwidth(catalog: Catalog, measured: Iterable[str], accelerator: str) -> str:
    """The measured accelerator closest to `accelerator` in memory bandwidth (itself if measured, or the
    relative a user-defined part names with `like:` when that one was measured)."""
    names = sorted(measured)
    if accelerator in names:
        return accelerator
    like = catalog.accelerators[accelerator].like
    if like in names:
        return str(like)
    target = math.log(_bandwidth(catalog, accelerator))
    return min(names, key=lambda name: abs(math.log(_bandwidth(catalog, name)) - target))


def _bandwidth(catalog: Catalog, accelerator: str) -> float:
    figure = catalog.accelerators[accelerator].memory_bandwidth
    if figure is None:
        raise CalibrationError(f"accelerator {accelerator!r} has no memory bandwidth in the catalog")
    return figure.value


def _with_alphas(models: dict[str, ModelFit], catalog: Catalog) -> dict[str, ModelFit]:
    def peak(name: str) -> float:
        return math.log(_bandwidth(catalog, name))

    fitted: dict[str, ModelFit] = {}
    for name, fit in models.items():
        if len(fit.anchors) < 2:
            continue
        batch = min(anchor.batch for anchor in fit.anchors.values())
        xs = np.array([peak(acc) for acc in fit.anchors])
        ys = np.array([math.log(anchor.time(batch)) for anchor in fit.anchors.values()])
        slope = float(np.polyfit(xs, ys, 1)[0]) if np.ptp(xs) > 0 else 0.0
        # Clamped to [0, 1]: a model that did not speed up on faster accelerators is not assumed to slow
        # down, and none is assumed to outgrow the bandwidth ratio when extrapolated to much newer parts
        # (fitted values above 1 come from K80 -> P100, where compute grew 4x as well).
        fitted[name] = ModelFit(name, fit.family, min(1.0, max(0.0, -slope)),
                                f"fitted on {', '.join(sorted(fit.anchors))}", fit.anchors)
    everyone = [fit.alpha for fit in fitted.values()]
    out: dict[str, ModelFit] = {}
    for name, fit in models.items():
        if name in fitted:
            out[name] = fitted[name]
            continue
        family = [f.alpha for f in fitted.values() if f.family == fit.family]
        pool, basis = (family, f"median of the {fit.family} family") if family else (everyone, "median of all models")
        alpha = float(np.median(pool)) if pool else 0.5
        out[name] = ModelFit(name, fit.family, alpha, basis if pool else "default 0.5 (no multi-accelerator data)",
                             fit.anchors)
    return out


def _single(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["kind"] == "training") & (table["count"] == 1) | (table["kind"] == "training")
                 & (table["nodes"] == 1) & _is_llm_rows(table)]


def _is_llm_rows(table: pd.DataFrame) -> pd.Series:
    return table["tokens"].notna()


def row_tokens(row: Mapping[Any, Any]) -> float:
    tokens = row.get("tokens")
    return float(tokens) if tokens is not None and not math.isnan(tokens) else DEFAULT_LLM_TOKENS


def round6(value: float) -> float:
    return float(f"{value:.6g}")
