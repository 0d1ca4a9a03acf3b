"""The shipped hardware catalog: accelerator specs and relative training speeds, each with a source.

Data lives in `accelerators.yaml` (hand-maintained from datasheets) and `training_speeds.csv`
(rebuilt from ../shared/data by tools/build_catalog.py). This module only reads them.
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from dcsim import units
from dcsim.errors import CatalogError


@dataclass(frozen=True)
class Figure:
    """One catalog number with its provenance."""

    value: float
    source: str
    estimated: bool = False
    note: str = ""


@dataclass(frozen=True)
class AcceleratorSpec:
    name: str
    kind: str
    vendor: str
    peak_fp16_flops: Figure
    memory_bytes: Figure
    tdp_w: Figure
    idle_w: Figure
    peak_fp32_flops: Figure | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""

    def figures(self) -> dict[str, Figure]:
        """Every figure of this accelerator by field name (for listings)."""
        names = ["peak_fp16_flops", "peak_fp32_flops", "memory_bytes", "tdp_w", "idle_w"]
        return {n: f for n in names if (f := getattr(self, n)) is not None}


@dataclass(frozen=True)
class SpeedEntry:
    relative_speed: float
    estimated: bool
    source: str


@dataclass(frozen=True)
class Catalog:
    reference_accelerator: str
    accelerators: dict[str, AcceleratorSpec]
    speeds: dict[tuple[str, str], SpeedEntry] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    def accelerator(self, name: str) -> AcceleratorSpec:
        """Look up an accelerator by name or alias; unknown names list the close matches."""
        canonical = self.canonical_accelerator(name)
        return self.accelerators[canonical]

    def canonical_accelerator(self, name: str) -> str:
        canonical = self._aliases.get(name.lower())
        if canonical is None:
            raise CatalogError(_unknown("accelerator", name, list(self.accelerators)))
        return canonical

    def model_types(self) -> list[str]:
        return sorted({model for model, _ in self.speeds})

    def check_model_type(self, name: str) -> None:
        if name not in self.model_types():
            raise CatalogError(_unknown("model type", name, self.model_types()))

    def relative_speed(self, model: str, accelerator: str) -> float:
        """Speed of `model` on `accelerator` relative to the reference accelerator (= 1.0)."""
        entry = self.speeds.get((model, accelerator))
        if entry is None:
            self.check_model_type(model)
            raise CatalogError(f"no training speed for model type {model!r} on accelerator {accelerator!r}")
        return entry.relative_speed


def _unknown(what: str, name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {what} {name!r}{hint} (known: {', '.join(sorted(choices))})"


def _figure(raw: Any, kind: units.Kind | None, where: str) -> Figure:
    if not isinstance(raw, dict) or "value" not in raw or "source" not in raw:
        raise CatalogError(f"{where}: expected a mapping with value and source, got {raw!r}")
    value = units.parse(raw["value"], kind) if kind else float(raw["value"])
    return Figure(value=value, source=str(raw["source"]), estimated=bool(raw.get("estimated", False)),
                  note=str(raw.get("note", "")))


_FIELD_KINDS: dict[str, units.Kind | None] = {
    "peak_fp16_flops": "flops", "peak_fp32_flops": "flops", "memory_bytes": "bytes", "tdp_w": "power",
    "idle_w": "power",
}


@cache
def load_catalog() -> Catalog:
    """Read the shipped catalog once per process."""
    package = resources.files("dcsim.catalog")
    raw = yaml.safe_load(package.joinpath("accelerators.yaml").read_text())
    accelerators: dict[str, AcceleratorSpec] = {}
    aliases: dict[str, str] = {}
    for name, spec in raw["accelerators"].items():
        where = f"catalog/accelerators.yaml: accelerators.{name}"
        figures = {key: _figure(spec[key], kind, f"{where}.{key}") for key, kind in _FIELD_KINDS.items() if key in spec}
        accelerators[name] = AcceleratorSpec(
            name=name, kind=spec["kind"], vendor=spec["vendor"], aliases=tuple(spec.get("aliases", [])),
            description=spec.get("description", ""), **figures,
        )
        for alias in (name, *spec.get("aliases", [])):
            aliases[alias.lower()] = name
    speeds: dict[tuple[str, str], SpeedEntry] = {}
    with package.joinpath("training_speeds.csv").open() as handle:
        for row in csv.DictReader(handle):
            speeds[(row["model"], row["accelerator"])] = SpeedEntry(
                float(row["relative_speed"]), row["estimated"] == "true", row["source"]
            )
    return Catalog(reference_accelerator=raw["reference_accelerator"], accelerators=accelerators,
                   speeds=speeds, _aliases=aliases)
