"""Performance and power models fitted to measured model runs, each with its fit error.

The shipped fit lives in dcsim/catalog/calibration.yaml (written by tools/build_catalog.py from
../shared/data); `dcsim calibration fit` writes an overlay with the same layout from a user's
measurements, and a scenario naming overlays gets their entries in place of the shipped ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dcsim.calibration.fitting import FitError
from dcsim.calibration.inference import InferenceModel
from dcsim.calibration.inference_fit import fit_inference
from dcsim.calibration.power import PowerModel, fit_power
from dcsim.calibration.scaling import ScalingModel, StepTime, fit_scaling
from dcsim.calibration.training import TrainingModel, fit_training
from dcsim.catalog import AcceleratorSpec, Catalog, load_catalog, load_shipped_yaml
from dcsim.errors import CalibrationError, clip, excerpt
from dcsim.inputs import InputError, load_yaml, read_text

SECTIONS = ("training", "scaling", "inference", "power")
FORMAT = "dcsim-calibration/1"

__all__ = ["SECTIONS", "Calibration", "StepTime", "fit_sections", "load_calibration", "read_overlay",
           "section_kinds", "write_calibration"]


@dataclass(frozen=True)
class Calibration:
    training: TrainingModel
    scaling: ScalingModel
    inference: InferenceModel
    power: PowerModel
    origins: tuple[str, ...] = ("shipped catalog",)

    @property
    def catalog(self) -> Catalog:
        return self.training.catalog

    def step_time(self, model: str, accelerator: str, count: int = 1, nodes: int = 1,
                  batch: float | None = None, tokens: float | None = None) -> StepTime:
        """Compute and synchronisation time of one data-parallel training step."""
        accelerator = self.catalog.canonical_accelerator(accelerator)
        return self.scaling.step_time(self.training, model, accelerator, count, nodes, batch, tokens)

    def relative_speed(self, model: str, accelerator: str, batch: float | None = None) -> float:
        """One-accelerator training throughput relative to the catalog's reference accelerator, at `batch`
        samples per step (None: the model's median measured batch)."""
        accelerator = self.catalog.canonical_accelerator(accelerator)
        if model == "generic":
            return _generic_speed(self, accelerator)
        return self.training.relative_speed(model, accelerator, self.catalog.reference_accelerator, batch)

    def model_types(self) -> list[str]:
        """Model names a training workload may use: calibrated models, catalog LLMs, and `generic`.

        Any llm-<N>b name is accepted as well (see TrainingModel.has_model)."""
        llms = [name for name, spec in self.catalog.models.items() if spec.kind == "llm"]
        return sorted({*self.training.model_names(), *llms, "generic"})

    def is_measured(self, accelerator: str) -> bool:
        """Whether any fitted model was fitted to measurements of this accelerator itself; speeds of
        every other accelerator (user-defined ones always) are extrapolated from its datasheet figures."""
        name = self.catalog.canonical_accelerator(accelerator)
        return (any(name in fit.anchors for fit in self.training.models.values()) or name in self.training.mfu
                or name in self.inference.entries)

    def speed_basis(self, accelerator: str) -> str:
        """`measured`, or `extrapolated` with what the extrapolation starts from (for listings and reports)."""
        name = self.catalog.canonical_accelerator(accelerator)
        if self.is_measured(name):
            return "measured"
        like = self.catalog.accelerators[name].like
        return f"extrapolated (like {like})" if like else "extrapolated"

    def bound_to(self, catalog: Catalog) -> Calibration:
        """This calibration reading `catalog` (the shipped one plus user-defined accelerators)."""
        return Calibration(training=replace(self.training, catalog=catalog),
                           scaling=replace(self.scaling, catalog=catalog),
                           inference=replace(self.inference, catalog=catalog),
                           power=replace(self.power, catalog=catalog), origins=self.origins)

    def errors(self) -> list[FitError]:
        return [*self.training.errors, *self.scaling.errors, *self.inference.errors, *self.power.errors]

    def overlay(self, sections: dict[str, Any], origin: str) -> Calibration:
        """A copy where the fitted `sections` (a section name -> fitted model mapping) take precedence."""
        changed = {name: getattr(self, name).overlay(model) for name, model in sections.items()}
        return Calibration(**{name: changed.get(name, getattr(self, name)) for name in SECTIONS},
                           origins=(*self.origins, origin))


def _generic_speed(calibration: Calibration, accelerator: str) -> float:
    """Geometric mean over the calibrated networks (not LLMs): the speed of an unnamed job."""
    names = [name for name, fit in calibration.training.models.items() if fit.family != "llm"]
    logs = [math.log(calibration.relative_speed(name, accelerator)) for name in names]
    return math.exp(sum(logs) / len(logs)) if logs else 1.0


def section_kinds(section: str, table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the measurement table a section is fitted to."""
    kind = table["kind"]
    if section == "training":
        return table[kind == "training"]
    if section == "scaling":
        return table[(kind == "training") & (table["count"] > 1)]
    if section == "inference":
        return table[kind.isin(["prefill", "decode", "linear"])]
    return table[(kind == "power_cap") | ((kind == "decode") & table["power"].notna())]


def fit_sections(table: pd.DataFrame, catalog: Catalog, base: Calibration | None = None,
                 cross_validate: bool = True) -> dict[str, Any]:
    """Fit every section the table has rows for; a section without rows is left out."""
    sections: dict[str, Any] = {}
    one_accelerator = section_kinds("training", table)
    if not one_accelerator[one_accelerator["count"] == 1].empty or one_accelerator["tokens"].notna().any():
        sections["training"] = fit_training(table, catalog, cross_validate)
    if not section_kinds("scaling", table).empty:
        training = sections.get("training")
        if base is not None:
            training = base.training.overlay(training) if training is not None else base.training
        if training is None:
            raise CalibrationError("cannot fit scaling: no one-accelerator training rows to take compute times from")
        sections["scaling"] = fit_scaling(table, training, catalog, cross_validate)
    if not section_kinds("inference", table).empty:
        sections["inference"] = fit_inference(table, catalog)
    if not section_kinds("power", table).empty:
        sections["power"] = fit_power(table, catalog)
    if not sections:
        raise CalibrationError("the measurements have no rows any model can be fitted to")
    return sections


def write_calibration(sections: dict[str, Any], path: Path, header: str) -> None:
    body = {"format": FORMAT, **{name: sections[name].to_dict() for name in SECTIONS if name in sections}}
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    path.write_text(comment + yaml.safe_dump(body, sort_keys=False, width=120))


def read_overlay(path: Path, catalog: Catalog | None = None) -> dict[str, Any]:
    """Read a calibration file (shipped or overlay) into fitted section models."""
    catalog = catalog or load_catalog()
    try:
        raw = load_yaml(read_text(path))  # a regular, bounded UTF-8 file; no alias bombs
    except InputError as exc:
        raise CalibrationError(f"{path}: cannot read calibration overlay: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CalibrationError(f"{path}: not a dcsim calibration file (expected `format: {FORMAT}`, "
                               "as written by `dcsim calibration fit`)")
    unknown = sorted(set(raw) - {"format", *SECTIONS})
    if unknown:
        raise CalibrationError(f"{path}: unknown section {excerpt(unknown[0])} (sections: {', '.join(SECTIONS)})")
    for name in SECTIONS:
        if name in raw and not isinstance(raw[name], dict):
            raise CalibrationError(f"{path}: section {excerpt(name)}: expected a mapping, "
                                   f"got {type(raw[name]).__name__}")
    try:
        return _sections_from_dict(raw, catalog)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f"{path}: malformed calibration entry ({type(exc).__name__}: "
                               f"{clip(str(exc))})") from None


def _sections_from_dict(raw: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    readers = {"training": lambda r: TrainingModel.from_dict(r, catalog),
               "scaling": lambda r: ScalingModel.from_dict(r, catalog),
               "inference": InferenceModel.from_dict, "power": PowerModel.from_dict}
    return {name: readers[name](raw[name]) for name in SECTIONS if name in raw}


@cache
def _shipped() -> Calibration:
    text = resources.files("dcsim.catalog").joinpath("calibration.yaml").read_text()
    sections = _sections_from_dict(load_shipped_yaml(text), load_catalog())
    return Calibration(**sections)


@cache
def _with_overlays(overlays: tuple[tuple[Path, int, int], ...],
                   accelerators: tuple[AcceleratorSpec, ...] = ()) -> Calibration:
    calibration = _shipped()
    catalog = calibration.catalog
    if accelerators:
        catalog = catalog.with_accelerators(accelerators)
        calibration = calibration.bound_to(catalog)
    for path, _, _ in overlays:
        calibration = calibration.overlay(read_overlay(path, catalog), str(path))
    return calibration


def load_calibration(overlays: Sequence[Path] = (), accelerators: Sequence[AcceleratorSpec] = ()) -> Calibration:
    """The shipped calibration with `overlays` applied in order (later ones win), over the shipped
    catalog plus `accelerators` (user-defined parts, whose speeds the same fitted models extrapolate).

    Cached per process, keyed by each file's path, modification time and size, so an overlay
    rewritten on disk is read again."""
    return _with_overlays(tuple(_stamp(Path(p).resolve()) for p in overlays), tuple(accelerators))


def _stamp(path: Path) -> tuple[Path, int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (path, -1, -1)  # read_overlay reports the missing file
    return (path, stat.st_mtime_ns, stat.st_size)
