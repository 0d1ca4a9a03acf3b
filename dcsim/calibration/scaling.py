"""Multi-accelerator training: step time = compute + exposed synchronisation, kept separate.

Synchronisation is fitted per model and accelerator, separately for jobs inside one node
("local": NVLink/PCIe or one TPU slice) and jobs spanning nodes ("network"), as
sync = alpha + beta x (accelerators - 2), the shape of a ring all-reduce whose per-hop latency grows
with the ring. Pollux reports the synchronisation time itself; for Gavel and MaxText it is the step
time minus the one-node step time at the same batch. On an accelerator the model was not measured
on, the fit of the nearest measured accelerator (by memory bandwidth, as in training.py) is used,
with the local part scaled by the ratio of intra-node bandwidths; the network part is left as
measured. A later network model replaces the `sync` part of StepTime with the time its flows get.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dcsim.calibration.fitting import FitError, ape_stats
from dcsim.calibration.table import row_model
from dcsim.calibration.training import TrainingModel, nearest_by_bandwidth, round6, row_tokens
from dcsim.catalog import Catalog, ModelSpec

CLASSES = ("local", "network")


@dataclass(frozen=True)
class StepTime:
    """One training step of a data-parallel job: compute and the synchronisation not overlapped."""

    compute: float
    sync: float
    count: int
    batch: float  # per accelerator

    @property
    def total(self) -> float:
        return self.compute + self.sync

    @property
    def samples_per_second(self) -> float:
        return self.count * self.batch / self.total


@dataclass(frozen=True)
class SyncFit:
    alpha: float
    beta: float
    points: int

    def time(self, count: int) -> float:
        return self.alpha + self.beta * max(count - 2, 0)


@dataclass(frozen=True)
class ScalingModel:
    fits: dict[str, dict[str, dict[str, SyncFit]]]  # model -> accelerator -> class -> fit
    catalog: Catalog
    errors: tuple[FitError, ...] = ()

    def sync_time(self, model: str, accelerator: str, count: int, nodes: int) -> float:
        """Exposed synchronisation seconds per step; 0 for one accelerator or an unmeasured model."""
        if count <= 1:
            return 0.0
        kind = "local" if nodes <= 1 else "network"
        by_accelerator = {acc: classes[kind] for acc, classes in self.fits.get(model, {}).items() if kind in classes}
        if not by_accelerator:
            return 0.0
        if accelerator in by_accelerator:
            return by_accelerator[accelerator].time(count)
        anchor = nearest_by_bandwidth(self.catalog, by_accelerator, accelerator)
        time = by_accelerator[anchor].time(count)
        if kind == "local":
            time *= _link(self.catalog, anchor) / _link(self.catalog, accelerator)
        return time

    def step_time(self, training: TrainingModel, model: str | ModelSpec, accelerator: str, count: int = 1,
                  nodes: int = 1, batch: float | None = None, tokens: float | None = None) -> StepTime:
        spec = model if isinstance(model, ModelSpec) else training.spec(model)
        compute = training.compute_time(spec, accelerator, batch, tokens)
        sync = self.sync_time(spec.name, accelerator, count, nodes)
        anchor_batch = batch
        if anchor_batch is None:
            fit = training.models.get(spec.name)
            anchor_batch = next(iter(fit.anchors.values())).batch if fit else 1.0
        return StepTime(compute, sync, count, anchor_batch)

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": {model: {acc: {kind: {"alpha_s": round6(f.alpha), "beta_s": round6(f.beta), "points": f.points}
                                     for kind, f in sorted(classes.items())}
                               for acc, classes in sorted(by_acc.items())}
                       for model, by_acc in sorted(self.fits.items())},
            "errors": [error.to_dict() for error in self.errors],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], catalog: Catalog) -> ScalingModel:
        fits = {model: {acc: {kind: SyncFit(float(f["alpha_s"]), float(f["beta_s"]), int(f["points"]))
                              for kind, f in classes.items()} for acc, classes in by_acc.items()}
                for model, by_acc in raw.get("models", {}).items()}
        return cls(fits, catalog, tuple(FitError.from_dict(e) for e in raw.get("errors", [])))

    def overlay(self, other: ScalingModel) -> ScalingModel:
        fits = {model: dict(by_acc) for model, by_acc in self.fits.items()}
        for model, by_acc in other.fits.items():
            fits.setdefault(model, {}).update(by_acc)
        return ScalingModel(fits, self.catalog, self.errors + other.errors)

    def predictions(self, training: TrainingModel, table: pd.DataFrame) -> pd.DataFrame:
        """Predicted vs measured step time of every multi-accelerator training row."""
        out = []
        for row in _multi(table).to_dict("records"):
            spec = row_model(row, self.catalog, custom=True)
            if not training.has_model(spec.name):
                continue
            step = self.step_time(training, spec, row["accelerator"], int(row["count"]), int(row["nodes"]),
                                  row["batch"], row_tokens(row))
            out.append({"family": "training scaling", "kind": "training", "model": spec.name,
                        "accelerator": row["accelerator"], "measured": row["time"], "predicted": step.total})
        return pd.DataFrame(out, columns=["family", "kind", "model", "accelerator", "measured", "predicted"])


def fit_scaling(table: pd.DataFrame, training: TrainingModel, catalog: Catalog,
                cross_validate: bool = True) -> ScalingModel:
    """Fit synchronisation per model, accelerator and class to the multi-accelerator training rows."""
    rows = _multi(table)
    one_node = _one_node_times(table)
    samples: list[dict[str, Any]] = []
    for row in rows.to_dict("records"):
        spec = row_model(row, catalog, custom=True)
        if not training.has_model(spec.name):
            continue
        if not math.isnan(row["sync_time"]):
            sync = row["sync_time"]
        else:
            key = (spec.name, row["accelerator"], row["batch"], row_tokens(row))
            compute = one_node.get(key)
            if compute is None:
                compute = training.compute_time(spec, row["accelerator"], row["batch"], row_tokens(row))
            sync = max(row["time"] - compute, 0.0)
        samples.append({"model": spec.name, "accelerator": row["accelerator"],
                        "kind": "local" if row["nodes"] <= 1 else "network", "count": row["count"],
                        "sync": sync, "time": row["time"]})
    fits: dict[str, dict[str, dict[str, SyncFit]]] = {}
    frame = pd.DataFrame(samples, columns=["model", "accelerator", "kind", "count", "sync", "time"])
    for (model, accelerator, kind), group in frame.groupby(["model", "accelerator", "kind"]):
        fits.setdefault(str(model), {}).setdefault(str(accelerator), {})[str(kind)] = _fit_sync(group)
    scaling = ScalingModel(fits, catalog)
    errors: list[FitError] = []
    predicted = scaling.predictions(training, table)
    if not predicted.empty:
        errors.append(ape_stats("scaling", "fit (multi-accelerator step time)", predicted["predicted"],
                                predicted["measured"]))
    if cross_validate and not frame.empty:
        errors.extend(_hold_out_largest(frame, training, table, catalog))
    return ScalingModel(fits, catalog, tuple(errors))


def _hold_out_largest(frame: pd.DataFrame, training: TrainingModel, table: pd.DataFrame,
                      catalog: Catalog) -> list[FitError]:
    """Fit each group without its largest accelerator count and predict that count's step times."""
    predicted: list[float] = []
    measured: list[float] = []
    for _, group in frame.groupby(["model", "accelerator", "kind"]):
        largest = group["count"].max()
        if group["count"].nunique() < 3:  # need two counts left to fit alpha and beta
            continue
        fit = _fit_sync(group[group["count"] < largest])
        hidden = group[group["count"] == largest]
        compute = hidden["time"] - hidden["sync"]
        predicted.extend(compute + fit.time(int(largest)))
        measured.extend(hidden["time"])
    if not measured:
        return []
    return [ape_stats("scaling", "cv: predict the largest count", predicted, measured,
                      note="synchronisation refitted without the largest count of each model/accelerator/class")]


def _fit_sync(group: pd.DataFrame) -> SyncFit:
    from scipy.optimize import nnls  # only fits need scipy: runs skip its import

    count, sync, time = (group[c].to_numpy(dtype=float) for c in ("count", "sync", "time"))
    if len(np.unique(count)) == 1:
        return SyncFit(float(np.median(sync)), 0.0, len(group))
    design = np.column_stack([np.ones_like(count), count - 2]) / time[:, None]  # error relative to step time
    (alpha, beta), _ = nnls(design, sync / time)
    return SyncFit(float(alpha), float(beta), len(group))


def _one_node_times(table: pd.DataFrame) -> dict[tuple[str, str, float, float], float]:
    rows = table[(table["kind"] == "training") & ((table["count"] == 1) | (table["nodes"] == 1)
                                                 & table["tokens"].notna())]
    return {(str(r["model"]), str(r["accelerator"]), float(r["batch"]), row_tokens(r)): float(r["time"])
            for r in rows.to_dict("records")}


def _multi(table: pd.DataFrame) -> pd.DataFrame:
    training = table["kind"] == "training"
    llm_one_node = (table["nodes"] == 1) & table["tokens"].notna()
    return table[training & (table["count"] > 1) & ~llm_one_node]


def _link(catalog: Catalog, accelerator: str) -> float:
    figure = catalog.accelerators[accelerator].interconnect_bandwidth
    if figure is None:
        raise ValueError(f"accelerator {accelerator!r} has no interconnect bandwidth in the catalog")
    return figure.value
