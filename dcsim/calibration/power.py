"""Accelerator power: serving power vs decode batch, training power and slowdown under a power cap.

Serving (fitted per accelerator on `decode` rows that carry `power`, W per GPU):

    P(b, n) = (p_min + (p_max - p_min) x (1 - exp(-b / b0))) x n ** -alpha

b is the decode batch per replica and n the GPUs per replica. It rises with batch and saturates, with
0 <= p_min <= p_max <= TDP and 0 <= alpha <= 1, so it is non-decreasing in batch and never above TDP.
The n ** -alpha term is there because per-GPU power falls with tensor/expert parallelism (more time in
communication); alpha is 0 when the rows have one n only. Model size was tried as a third input, a
factor (active params per GPU) ** gamma on ML.ENERGY v3: gamma came out 0.07 (H100) and 0.12 (B200),
median error 9.5 -> 8.2% and 21.9 -> 17.2%, worst error no better; left out, since the v2 rows carry
no parameter counts and the serving simulator would have to pass them for a modest gain. Energy per
output token = P x n x iteration time / b (`energy_per_token`); the iteration time comes from the
latency model.

Training under a power cap (fitted per accelerator on `power_cap` rows; the rows of one job share
accelerator, model, batch, count and source, and its row at the highest cap counts as uncapped):

    busy power        D = mean over jobs of the power at the highest cap   (reported / TDP as well)
    power under cap   P(c) = min(D, eta x c), eta = mean of power / cap over capped rows
    time multiplier   m(c) = (D / c) ** beta for c < D, else 1 (>= 1, non-increasing in c)

beta is fitted in log space over the rows whose cap is below their own job's uncapped draw. The
simulator does not know a job's own draw, so it uses the accelerator's D: the fit errors are reported
both that way ("as simulated", which is what `predictions` shows) and with each job's own draw. An
accelerator without a curve uses the shared one: beta fitted on all accelerators together and
D = median busy fraction of TDP x its TDP; a leave-one-accelerator-out check measures that fallback.
Idle power is the catalog's idle_w; nothing is fitted for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from dcsim.calibration.fitting import FitError, ape_stats, require_points
from dcsim.catalog import Catalog, load_catalog
from dcsim.errors import CalibrationError

__all__ = ["CapFit", "PowerModel", "ServingFit", "check_serving", "energy_per_token", "fit_power",
           "leave_one_accelerator_out"]

MIN_SERVING_POINTS = 5
MIN_CAPPED_POINTS = 3
JOB_KEY = ("model", "batch", "count", "source")
PREDICTION_COLUMNS = ["family", "kind", "model", "accelerator", "measured", "predicted"]


@dataclass(frozen=True)
class ServingFit:
    """Per-GPU serving power of one accelerator as a function of decode batch and GPUs per replica."""

    p_min: float  # W per GPU as the batch goes to 0, one GPU per replica
    p_max: float  # W per GPU at a large batch, one GPU per replica
    batch_scale: float  # b0: batch at which 63% of the rise is reached
    count_exponent: float  # alpha
    points: int
    source: str

    def power(self, batch: float, count: float = 1.0) -> float:
        rise = 1.0 - math.exp(-max(batch, 0.0) / self.batch_scale)
        return (self.p_min + (self.p_max - self.p_min) * rise) * count ** -self.count_exponent


@dataclass(frozen=True)
class CapFit:
    """Busy training power of one accelerator and how a power cap changes its power and step time."""

    busy_w: float  # D: mean uncapped draw per busy accelerator
    busy_fraction: float  # D / catalog TDP at fit time (used for the shared fallback)
    cap_power_ratio: float  # eta
    cap_time_exponent: float  # beta
    jobs: int
    points: int
    source: str


@dataclass(frozen=True)
class PowerModel:
    serving: dict[str, ServingFit] = field(default_factory=dict)
    training: dict[str, CapFit] = field(default_factory=dict)
    shared_cap_time_exponent: float | None = None
    shared_busy_fraction: float | None = None
    catalog: Catalog = field(default_factory=load_catalog, repr=False, compare=False)
    errors: tuple[FitError, ...] = ()

    def __post_init__(self) -> None:
        for name, fit in self.serving.items():
            tdp = self.catalog.accelerator(name).tdp_w.value
            if not 0.0 <= fit.p_min <= fit.p_max <= tdp * (1 + 1e-9) or fit.batch_scale <= 0 \
                    or not 0.0 <= fit.count_exponent <= 1.0:
                raise CalibrationError(f"serving power for {name}: need 0 <= p_min <= p_max <= TDP ({tdp:g} W), "
                                       f"b0 > 0 and 0 <= alpha <= 1, got {fit}")

    def training_power(self, accelerator: str, power_cap: float | None = None) -> float | None:
        """W per busy accelerator (under `power_cap` if given); None where nothing was calibrated."""
        fit = self.training.get(accelerator)
        if fit is None:
            return None
        if power_cap is None:
            return fit.busy_w
        return min(fit.busy_w, fit.cap_power_ratio * power_cap)

    def cap_slowdown(self, accelerator: str, power_cap: float, demand: float | None = None) -> float:
        """Step-time multiplier under `power_cap` (1 at or above the busy draw); see `cap_basis`.

        `demand` overrides the uncapped busy draw (the simulator passes the draw it uses, so a cap
        saves energy only where it also slows the job)."""
        if power_cap <= 0:
            raise CalibrationError(f"power cap must be > 0 W, got {power_cap:g}")
        fit = self.training.get(accelerator)
        if fit is not None:
            fitted_demand, beta = fit.busy_w, fit.cap_time_exponent
        else:
            fitted_demand, beta = self._shared_curve(accelerator)
        demand = fitted_demand if demand is None else demand
        return 1.0 if power_cap >= demand else (demand / power_cap) ** beta

    def cap_basis(self, accelerator: str) -> str:
        """Where `cap_slowdown` gets its curve for `accelerator` (fitted, or shared with its numbers)."""
        if accelerator in self.training:
            return f"fitted on {accelerator}"
        demand, beta = self._shared_curve(accelerator)
        return (f"shared curve: beta {beta:.3g} over all fitted accelerators, busy draw {demand:.0f} W = "
                f"median busy fraction {self.shared_busy_fraction:.3g} x TDP")

    def _shared_curve(self, accelerator: str) -> tuple[float, float]:
        if self.shared_cap_time_exponent is None or self.shared_busy_fraction is None:
            raise CalibrationError(f"no power-cap calibration to take a slowdown for {accelerator!r} from")
        tdp = self.catalog.accelerator(accelerator).tdp_w.value
        return self.shared_busy_fraction * tdp, self.shared_cap_time_exponent

    def serving_power(self, accelerator: str, batch: float, count: float = 1.0) -> float | None:
        """Mean W per GPU of a replica decoding `batch` requests on `count` GPUs; None if not calibrated."""
        fit = self.serving.get(accelerator)
        return None if fit is None else fit.power(batch, count)

    def serving_energy_per_token(self, accelerator: str, batch: float, iteration_time: float,
                                 count: float = 1.0) -> float | None:
        """J per output token of a replica whose decode iteration takes `iteration_time` seconds."""
        power = self.serving_power(accelerator, batch, count)
        return None if power is None else energy_per_token(power, count, iteration_time, batch)

    def idle_power(self, accelerator: str) -> float:
        """Idle W of one accelerator, from the catalog (nothing is fitted)."""
        return self.catalog.accelerator(accelerator).idle_w.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "serving": {name: {"p_min_w": fit.p_min, "p_max_w": fit.p_max, "batch_scale": fit.batch_scale,
                               "count_exponent": fit.count_exponent, "points": fit.points, "source": fit.source}
                        for name, fit in sorted(self.serving.items())},
            "training": {name: {"busy_w": fit.busy_w, "busy_fraction_of_tdp": fit.busy_fraction,
                                "cap_power_ratio": fit.cap_power_ratio, "cap_time_exponent": fit.cap_time_exponent,
                                "jobs": fit.jobs, "points": fit.points, "source": fit.source}
                         for name, fit in sorted(self.training.items())},
            "shared_cap_time_exponent": self.shared_cap_time_exponent,
            "shared_busy_fraction_of_tdp": self.shared_busy_fraction,
            "errors": [error.to_dict() for error in self.errors],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], catalog: Catalog | None = None) -> PowerModel:
        catalog = catalog or load_catalog()
        serving = {catalog.canonical_accelerator(name): ServingFit(
            float(e["p_min_w"]), float(e["p_max_w"]), float(e["batch_scale"]), float(e["count_exponent"]),
            int(e["points"]), str(e["source"])) for name, e in (raw.get("serving") or {}).items()}
        training = {catalog.canonical_accelerator(name): CapFit(
            float(e["busy_w"]), float(e["busy_fraction_of_tdp"]), float(e["cap_power_ratio"]),
            float(e["cap_time_exponent"]), int(e["jobs"]), int(e["points"]), str(e["source"]))
            for name, e in (raw.get("training") or {}).items()}
        return cls(serving=serving, training=training,
                   shared_cap_time_exponent=_optional(raw.get("shared_cap_time_exponent")),
                   shared_busy_fraction=_optional(raw.get("shared_busy_fraction_of_tdp")), catalog=catalog,
                   errors=tuple(FitError.from_dict(e) for e in raw.get("errors") or []))

    def overlay(self, other: PowerModel) -> PowerModel:
        """`other`'s accelerators replace this one's, its shared curve too where it has one; errors add up."""
        return PowerModel(
            serving={**self.serving, **other.serving}, training={**self.training, **other.training},
            shared_cap_time_exponent=_first(other.shared_cap_time_exponent, self.shared_cap_time_exponent),
            shared_busy_fraction=_first(other.shared_busy_fraction, self.shared_busy_fraction),
            catalog=self.catalog, errors=self.errors + other.errors)

    def predictions(self, table: pd.DataFrame, catalog: Catalog | None = None) -> pd.DataFrame:
        """Predicted vs measured, as simulated: serving power, cap time multiplier and capped power."""
        del catalog  # accelerator names in a checked table are already canonical
        out: list[dict[str, Any]] = []
        for row in _serving_rows(table).to_dict("records"):
            predicted = self.serving_power(row["accelerator"], row["batch"], row["count"])
            if predicted is not None:
                out.append(_prediction("power serving", row, row["power"], predicted))
        for row in _cap_rows(table).to_dict("records"):
            accelerator = row["accelerator"]
            if accelerator in self.training or self.shared_cap_time_exponent is not None:
                out.append(_prediction("power cap time", row, row["multiplier"],
                                       self.cap_slowdown(accelerator, row["power_cap"])))
            capped = self.training_power(accelerator, row["power_cap"])
            if capped is not None:
                out.append(_prediction("power cap power", row, row["power"], capped))
        return pd.DataFrame(out, columns=PREDICTION_COLUMNS)


def energy_per_token(power_w: float, count: float, iteration_time: float, batch: float) -> float:
    """J per output token: `count` GPUs at `power_w` each for one iteration that emits `batch` tokens."""
    return power_w * count * iteration_time / batch


def fit_power(table: pd.DataFrame, catalog: Catalog) -> PowerModel:
    """Fit serving power to `decode` rows with `power` and cap models to `power_cap` rows; others ignored."""
    serving_rows, cap_rows = _serving_rows(table), _cap_rows(table)
    if serving_rows.empty and cap_rows.empty:
        require_points(0, 1, "power models (no power_cap rows and no decode rows with power)")
    serving: dict[str, ServingFit] = {}
    errors: list[FitError] = []
    for accelerator, rows in serving_rows.groupby("accelerator", sort=True):
        name = str(accelerator)
        serving[name] = _fit_serving(rows, name, catalog.accelerator(name).tdp_w.value)
        errors.append(_serving_error(serving, rows, f"fit: {name}", note="W per GPU vs decode batch"))
    if len(serving) > 1:
        errors.append(_serving_error(serving, serving_rows, "fit: all accelerators"))
    training: dict[str, CapFit] = {}
    for accelerator, rows in cap_rows.groupby("accelerator", sort=True):
        name = str(accelerator)
        training[name] = _fit_cap(rows, name, catalog.accelerator(name).tdp_w.value)
    shared_beta = _fit_beta(cap_rows, "the shared power-cap slowdown") if training else None
    shared_fraction = _r(float(np.median([fit.busy_fraction for fit in training.values()]))) if training else None
    model = PowerModel(serving=serving, training=training, shared_cap_time_exponent=shared_beta,
                       shared_busy_fraction=shared_fraction, catalog=catalog)
    if training:
        errors.extend(_cap_errors(model, cap_rows))
    if len(training) > 1:
        errors.extend(leave_one_accelerator_out(cap_rows, catalog))
    return replace(model, errors=tuple(errors))


def check_serving(model: PowerModel, rows: pd.DataFrame, check: str) -> FitError:
    """Serving-power error of `model` on decode rows it was not fitted to (e.g. another dataset)."""
    rows = _serving_rows(rows)
    missing = sorted(set(rows["accelerator"]) - set(model.serving))
    if missing:
        raise CalibrationError(f"{check}: no serving power fitted for {', '.join(missing)}")
    return _serving_error(model.serving, rows, check)


def leave_one_accelerator_out(table: pd.DataFrame, catalog: Catalog) -> list[FitError]:
    """Hide one accelerator, fit the shared curve on the rest, predict the hidden one's multipliers."""
    rows = _cap_rows(table)
    names = sorted(set(rows["accelerator"]))
    known_pred: list[np.ndarray] = []
    simulated_pred: list[np.ndarray] = []
    measured: list[np.ndarray] = []
    notes: list[str] = []
    for name in names:
        hidden, rest = rows[rows["accelerator"] == name], rows[rows["accelerator"] != name]
        beta = _fit_beta(rest, f"the shared power-cap slowdown without {name}")
        fractions = [_fit_cap(group, str(acc), catalog.accelerator(str(acc)).tdp_w.value).busy_fraction
                     for acc, group in rest.groupby("accelerator", sort=True)]
        demand = float(np.median(fractions)) * catalog.accelerator(name).tdp_w.value
        known_pred.append(_multiplier(hidden["power_cap"].to_numpy(), hidden["demand"].to_numpy(), beta))
        simulated_pred.append(_multiplier(hidden["power_cap"].to_numpy(), np.full(len(hidden), demand), beta))
        measured.append(hidden["multiplier"].to_numpy())
        notes.append(f"{name} {beta:.3g}")
    truth = np.concatenate(measured)
    return [ape_stats("power.cap_time", "cv: leave one accelerator out", np.concatenate(known_pred), truth,
                      note="job's own uncapped draw known; beta without " + ", ".join(notes)),
            ape_stats("power.cap_time", "cv: leave one accelerator out, as simulated",
                      np.concatenate(simulated_pred), truth, note="draw = median busy fraction of the others x TDP")]


def _fit_serving(rows: pd.DataFrame, name: str, tdp: float) -> ServingFit:
    require_points(len(rows), MIN_SERVING_POINTS, f"serving power vs batch for {name}")
    batch, count = rows["batch"].to_numpy(), rows["count"].to_numpy()
    measured = rows["power"].to_numpy()
    free_alpha = len(np.unique(count)) > 1
    from scipy.optimize import least_squares  # only fits need scipy: runs skip its import

    def curve(x: np.ndarray) -> np.ndarray:
        p_min = x[0] * tdp
        p_max = p_min + x[1] * (tdp - p_min)
        alpha = x[3] if free_alpha else 0.0
        return (p_min + (p_max - p_min) * (1.0 - np.exp(-batch / x[2]))) * count ** -alpha

    best = None
    start_min = min(float(np.min(measured)) / tdp, 1.0)
    for scale in np.quantile(batch, [0.1, 0.25, 0.5, 0.75]):  # a few starts: the curve is not convex in b0
        start = np.array([start_min * 0.9, 0.5, max(float(scale), 0.1), 0.1])
        result = least_squares(lambda x: (curve(x) - measured) / measured, start,
                               bounds=([0.0, 0.0, 1e-2, 0.0], [1.0, 1.0, 1e6, 1.0]))
        if best is None or result.cost < best.cost:
            best = result
    assert best is not None
    x = best.x
    p_min = x[0] * tdp
    sources = sorted({str(s).split(" line ")[0].split(":")[0] for s in rows["source"]})
    alpha = _r(x[3]) if free_alpha and x[3] > 1e-6 else 0.0  # below 1e-6 is solver noise around 0
    return ServingFit(p_min=_r(p_min), p_max=_r(min(p_min + x[1] * (tdp - p_min), tdp)), batch_scale=_r(x[2]),
                      count_exponent=alpha, points=len(rows), source="; ".join(sources))


def _fit_cap(rows: pd.DataFrame, name: str, tdp: float) -> CapFit:
    capped = rows[rows["power_cap"] < rows["demand"]]
    require_points(len(capped), MIN_CAPPED_POINTS,
                   f"power-cap model for {name} (rows whose cap is below their job's uncapped draw)")
    jobs = rows.drop_duplicates("job")
    busy = float(jobs["demand"].mean())
    sources = sorted({str(s).split(":")[0] for s in rows["source"]})
    return CapFit(busy_w=_r(busy), busy_fraction=_r(busy / tdp),
                  cap_power_ratio=_r(float((capped["power"] / capped["power_cap"]).mean())),
                  cap_time_exponent=_fit_beta(rows, f"power-cap slowdown for {name}"), jobs=len(jobs),
                  points=len(rows), source="; ".join(sources))


def _fit_beta(rows: pd.DataFrame, what: str) -> float:
    """Least squares of log m = beta x log(D / c) over capped rows (through the origin)."""
    capped = rows[rows["power_cap"] < rows["demand"]]
    require_points(len(capped), MIN_CAPPED_POINTS, f"{what} (rows whose cap is below their job's uncapped draw)")
    x = np.log(capped["demand"].to_numpy() / capped["power_cap"].to_numpy())
    y = np.log(capped["multiplier"].to_numpy())
    return _r(max(float(x @ y / (x @ x)), 0.0))


def _cap_errors(model: PowerModel, rows: pd.DataFrame) -> list[FitError]:
    errors: list[FitError] = []
    by_acc = list(rows.groupby("accelerator", sort=True))
    ordered = pd.concat([group for _, group in by_acc])
    sim_time, sim_power = [], []
    for accelerator, group in by_acc:
        fit = model.training[str(accelerator)]
        caps = group["power_cap"].to_numpy()
        sim_time.append(_multiplier(caps, np.full(len(caps), fit.busy_w), fit.cap_time_exponent))
        sim_power.append(np.minimum(fit.busy_w, fit.cap_power_ratio * caps))
        errors.append(ape_stats("power.cap_time", f"fit: {accelerator}", sim_time[-1], group["multiplier"],
                                note=f"as simulated; beta {fit.cap_time_exponent:.3g}"))
        errors.append(ape_stats("power.cap_power", f"fit: {accelerator}", sim_power[-1], group["power"],
                                note=f"as simulated; busy {fit.busy_w:.0f} W"))
    if len(by_acc) > 1:
        errors.append(ape_stats("power.cap_time", "fit: all accelerators", np.concatenate(sim_time),
                                ordered["multiplier"], note="as simulated"))
        errors.append(ape_stats("power.cap_power", "fit: all accelerators", np.concatenate(sim_power),
                                ordered["power"], note="as simulated"))
    known_time = [_multiplier(g["power_cap"].to_numpy(), g["demand"].to_numpy(),
                              model.training[str(a)].cap_time_exponent) for a, g in by_acc]
    known_power = [np.minimum(g["demand"].to_numpy(), model.training[str(a)].cap_power_ratio * g["power_cap"])
                   for a, g in by_acc]
    errors.append(ape_stats("power.cap_time", "fit: job's own uncapped draw known", np.concatenate(known_time),
                            ordered["multiplier"]))
    errors.append(ape_stats("power.cap_power", "fit: job's own uncapped draw known", np.concatenate(known_power),
                            ordered["power"]))
    return errors


def _multiplier(caps: np.ndarray, demand: np.ndarray, beta: float) -> np.ndarray:
    return np.where(caps < demand, (demand / caps) ** beta, 1.0)


def _serving_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["kind"] == "decode") & table["power"].notna()]


def _cap_rows(table: pd.DataFrame) -> pd.DataFrame:
    """power_cap rows with their job id, the job's uncapped draw (`demand`) and time multiplier."""
    rows = table[table["kind"] == "power_cap"].copy()
    if rows.empty:
        return rows.assign(job=pd.Series(dtype=str), demand=pd.Series(dtype=float),
                           multiplier=pd.Series(dtype=float))
    key = ["accelerator", *JOB_KEY]
    rows["job"] = rows[key].astype(str).agg(" | ".join, axis=1)
    top = rows.loc[rows.sort_values("power_cap", kind="stable").groupby("job")["power_cap"].idxmax()]
    reference = top.set_index("job")
    rows["demand"] = rows["job"].map(reference["power"])
    rows["multiplier"] = rows["time"] / rows["job"].map(reference["time"])
    return rows


def _serving_error(fits: Mapping[str, ServingFit], rows: pd.DataFrame, check: str, note: str = "") -> FitError:
    predicted = [fits[a].power(b, n) for a, b, n in zip(rows["accelerator"], rows["batch"], rows["count"], strict=True)]
    return ape_stats("power.serving", check, predicted, rows["power"], note=note)


def _prediction(family: str, row: Mapping[Any, Any], measured: float, predicted: float) -> dict[str, Any]:
    return {"family": family, "kind": row["kind"], "model": row["model"], "accelerator": row["accelerator"],
            "measured": float(measured), "predicted": float(predicted)}


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def _first(*values: float | None) -> float | None:
    return next((value for value in values if value is not None), None)


def _r(value: float) -> float:
    return float(f"{value:.6g}")


