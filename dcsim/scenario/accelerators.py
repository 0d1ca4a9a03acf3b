"""Accelerators a user defines: in a scenario's `accelerators` section or in catalog overlay files.

A definition gives the datasheet figures dcsim's speed and power models read (memory, bandwidths,
peak FLOP/s per precision, TDP, idle power) and optionally `like: NAME`, a measured relative whose
fitted efficiency terms it borrows. No fitted model has measured a user-defined part, so every speed
for it is extrapolated and listings and reports say so. The limits below are plausibility ceilings
about ten times the fastest shipped part: a figure above one is a typo (a unit missing or a sparse
rate counted twice), not hardware.

Overlay file format (`catalog: [parts.yaml]` in a scenario):

    format: dcsim-catalog/1
    accelerators:
      X1: {kind: gpu, memory: 96GB, memory_bandwidth: 4TB/s, peak_flops: {bf16: 800TFLOPS}, ...}
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from dcsim.catalog import AcceleratorSpec, Catalog, Figure, load_catalog
from dcsim.errors import CatalogError, clip, excerpt
from dcsim.inputs import InputError, load_yaml, read_text
from dcsim.scenario.base import Strict
from dcsim.scenario.units_types import Quantity

if TYPE_CHECKING:
    from dcsim.calibration import Calibration

FORMAT = "dcsim-catalog/1"
IDLE_FRACTION = 0.13  # idle / TDP when not given: the catalog's estimate (see accelerators.yaml header)
# Precision names a definition may give, and the catalog field each fills (BF16 and FP16 share the
# 16-bit tensor rate, as on every shipped part).
PRECISIONS = {"fp32": "peak_fp32_flops", "tf32": None, "bf16": "peak_fp16_flops", "fp16": "peak_fp16_flops",
              "fp8": "peak_fp8_flops", "int8": "peak_int8_ops"}
_KNOWN_PRECISIONS = tuple(name for name, field in PRECISIONS.items() if field)

MAX_MEMORY_BYTES = 10e12  # 10 TB per accelerator; the largest shipped part has 288 GB
MAX_MEMORY_BANDWIDTH = 100e12  # 100 TB/s; the fastest shipped HBM is 8 TB/s
MAX_LINK_BANDWIDTH = 100e12  # 100 TB/s; NVLink 5 is 1.8 TB/s per GPU
MAX_PEAK_FLOPS = 1e17  # 100 PFLOP/s per precision; the fastest shipped dense rate is 5 PFLOP/s (FP8)
MAX_TDP_W = 20e3  # 20 kW per accelerator; the largest shipped TDP is 1.4 kW

MemoryBytes = Annotated[float, Quantity("bytes", "B", 0.0, MAX_MEMORY_BYTES, "10 TB per accelerator", low_open=True)]
MemoryBandwidth = Annotated[float, Quantity("bandwidth", "B/s", 0.0, MAX_MEMORY_BANDWIDTH,
                                            "100 TB/s, over ten times the fastest HBM", low_open=True)]
LinkBandwidth = Annotated[float, Quantity("bandwidth", "B/s", 0.0, MAX_LINK_BANDWIDTH,
                                          "100 TB/s, over fifty times NVLink 5", low_open=True)]
PeakFlops = Annotated[float, Quantity("flops", "FLOP/s", 0.0, MAX_PEAK_FLOPS,
                                      "100 PFLOP/s, twenty times the fastest dense rate shipped", low_open=True)]
Tdp = Annotated[float, Quantity("power", "W", 0.0, MAX_TDP_W, "20 kW per accelerator", low_open=True)]
IdlePower = Annotated[float, Quantity("power", "W", 0.0, MAX_TDP_W, "20 kW per accelerator")]


class AcceleratorDefinition(Strict):
    """One accelerator's datasheet figures (per accelerator, dense rates, no sparsity)."""

    kind: Literal["gpu", "tpu", "other"]
    vendor: str = Field("user-defined", max_length=100)
    description: str = Field("", max_length=500)
    source: str = Field("", max_length=500, description="where the figures come from (datasheet title or URL)")
    aliases: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=20)
    memory: MemoryBytes = Field(description='on-package memory, e.g. "141GB"')
    memory_bandwidth: MemoryBandwidth = Field(description='e.g. "4.8TB/s"')
    peak_flops: dict[str, PeakFlops] = Field(
        description=f"dense peak per precision ({', '.join(_KNOWN_PRECISIONS)}); bf16 or fp16 is required")
    tdp: Tdp = Field(description="thermal design power / maximum board power")
    idle_power: IdlePower | None = Field(None, description=f"default: {IDLE_FRACTION} x tdp (marked estimated)")
    interconnect_bandwidth: LinkBandwidth = Field(
        description="accelerator-to-accelerator bandwidth inside a node, both directions (NVLink, ICI, PCIe)")
    network_bandwidth: LinkBandwidth | None = Field(None, description="scale-out NIC bandwidth per accelerator")
    like: str | None = Field(None, max_length=100,
                             description="a measured accelerator whose fitted efficiency terms this one borrows")
    year: int = Field(0, ge=0, le=3000)

    @field_validator("peak_flops")
    @classmethod
    def _precisions(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            if name.lower() not in _KNOWN_PRECISIONS:
                raise ValueError(f"unknown precision {excerpt(name)}; expected one of {', '.join(_KNOWN_PRECISIONS)}")
        lowered = {name.lower(): rate for name, rate in value.items()}
        if "bf16" not in lowered and "fp16" not in lowered:
            raise ValueError("needs a bf16 or fp16 rate (the speed models read the 16-bit peak)")
        if "bf16" in lowered and "fp16" in lowered and lowered["bf16"] != lowered["fp16"]:
            raise ValueError("bf16 and fp16 share the 16-bit tensor rate here; give one, or both equal")
        return lowered

    @model_validator(mode="after")
    def _idle_below_tdp(self) -> AcceleratorDefinition:
        if self.idle_power is not None and self.idle_power >= self.tdp:
            raise ValueError(f"idle_power must be below tdp ({self.tdp:.4g} W), got {self.idle_power:.4g} W")
        return self

    def to_spec(self, name: str, origin: str) -> AcceleratorSpec:
        """The catalog entry for this definition; every figure's source names the file it came from."""
        source = f"{origin}" + (f" ({self.source})" if self.source else "")

        def figure(value: float) -> Figure:
            return Figure(value=value, source=source)

        rates: dict[str, Figure] = {}
        for precision, rate in self.peak_flops.items():
            field = PRECISIONS[precision]
            if field is not None:
                rates[field] = figure(rate)
        idle = (figure(self.idle_power) if self.idle_power is not None else
                Figure(self.tdp * IDLE_FRACTION, f"{IDLE_FRACTION} x tdp", estimated=True,
                       note="idle power not given; the catalog's mean idle/TDP ratio"))
        return AcceleratorSpec(
            name=name, kind=self.kind, vendor=self.vendor, memory_bytes=figure(self.memory),
            memory_bandwidth=figure(self.memory_bandwidth), interconnect_bandwidth=figure(self.interconnect_bandwidth),
            network_bandwidth=figure(self.network_bandwidth) if self.network_bandwidth is not None else None,
            tdp_w=figure(self.tdp), idle_w=idle, year=self.year, aliases=tuple(self.aliases),
            description=self.description or "user-defined accelerator", origin=origin, like=self.like,
            **rates)


AcceleratorName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]*$")]
Definitions = dict[AcceleratorName, AcceleratorDefinition]


class CatalogOverlay(Strict):
    """A catalog overlay file: user-defined accelerators that scenarios name under `catalog:`."""

    format: Literal["dcsim-catalog/1"]
    accelerators: Definitions = Field(min_length=1)


def read_catalog_overlay(path: Path) -> Definitions:
    """The definitions in one overlay file; CatalogError `path: field: problem` otherwise."""
    try:
        raw = load_yaml(read_text(path))
    except InputError as exc:
        raise CatalogError(f"{path}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CatalogError(f"{path}: format: expected `format: {FORMAT}` (a dcsim catalog overlay), "
                           f"got {excerpt(raw.get('format') if isinstance(raw, dict) else raw)}")
    try:
        return CatalogOverlay.model_validate(raw).accelerators
    except ValidationError as exc:
        raise CatalogError(f"{path}: {_first_problem(exc)}") from None


def _first_problem(exc: ValidationError) -> str:
    """`dotted.path: message, got value` for the first problem (the scenario loader's format)."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(clip(str(part), 40) for part in error["loc"]) or "(top level)"
    if error["type"] == "missing":
        return f"{where}: required field is missing"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field (check spelling; docs/calibration.md lists the fields)"
    message = clip(str(error["msg"]).removeprefix("Value error, "), 300)
    return f"{where}: {message}" if ", got " in message else f"{where}: {message}, got {excerpt(error.get('input'))}"


def specs_from(sections: list[tuple[str, Mapping[str, AcceleratorDefinition]]]) -> tuple[AcceleratorSpec, ...]:
    """Catalog entries for (origin, definitions) pairs, in order; checks `like:` names against the
    shipped catalog and the parts defined before (or beside) each."""
    specs = [definition.to_spec(name, origin) for origin, definitions in sections
             for name, definition in definitions.items()]
    catalog = extend(tuple(specs))  # raises on names clashing with shipped parts
    for spec in specs:
        if spec.like is None:
            continue
        where = f"{spec.origin}: " if spec.origin else ""  # "": the scenario's own section (its file is named)
        try:
            like = catalog.canonical_accelerator(spec.like)
        except CatalogError as exc:
            raise CatalogError(f"{where}accelerators.{spec.name}.like: {exc}") from None
        if like == spec.name:
            raise CatalogError(f"{where}accelerators.{spec.name}.like: names the part itself; "
                               "name a measured accelerator")
    return tuple(_resolved_like(spec, catalog) for spec in specs)


def _resolved_like(spec: AcceleratorSpec, catalog: Catalog) -> AcceleratorSpec:
    if spec.like is None:
        return spec
    from dataclasses import replace

    return replace(spec, like=catalog.canonical_accelerator(spec.like))


@cache
def extend(specs: tuple[AcceleratorSpec, ...]) -> Catalog:
    """The shipped catalog with `specs` added (cached: every build of a scenario asks for it)."""
    return load_catalog().with_accelerators(specs)


def definitions_of(data: Any, base_dir: str, label: str = "scenario") -> tuple[AcceleratorSpec, ...]:
    """User-defined accelerators of a raw scenario dict: overlay files (`catalog:`) first, then the
    scenario's own `accelerators:` section. Raises CatalogError (one line) for the first problem."""
    sections: list[tuple[str, Mapping[str, AcceleratorDefinition]]] = []
    files = data.get("catalog") if isinstance(data, dict) else None
    files = [files] if isinstance(files, str) else files
    for index, name in enumerate(files if isinstance(files, list) else []):
        if not isinstance(name, str):
            raise CatalogError(f"catalog.{index}: expected a file name, got {excerpt(name)}")
        path = Path(base_dir) / name
        sections.append((str(path), read_catalog_overlay(path)))
    inline = data.get("accelerators") if isinstance(data, dict) else None
    if isinstance(inline, dict):
        try:
            definitions = _DefinitionsModel.model_validate({"accelerators": inline}).accelerators
        except ValidationError:
            definitions = {}  # the schema reports these with their paths
        sections.append((label, definitions))
    return specs_from(sections)


class _DefinitionsModel(Strict):
    accelerators: Definitions


def scenario_accelerators(scenario: Any) -> tuple[AcceleratorSpec, ...]:
    """User-defined accelerators of a validated Scenario (its files resolved against its folder)."""
    data: dict[str, Any] = {"catalog": list(scenario.catalog),
                            "accelerators": {n: d.model_dump() for n, d in scenario.accelerators.items()}}
    try:
        return definitions_of(data, scenario.base_dir, scenario.source)
    except CatalogError as exc:
        message = str(exc)
        if not message.startswith(f"{scenario.source}: "):
            message = f"{scenario.source}: {message}"
        raise CatalogError(clip(message, 800)) from None


def scenario_catalog(scenario: Any) -> Catalog:
    """The catalog a scenario sees: shipped parts plus its user-defined ones."""
    return extend(scenario_accelerators(scenario))


def scenario_calibration(scenario: Any) -> Calibration:
    """The fitted models a scenario runs with: its overlays applied, over its catalog."""
    from dcsim.calibration import load_calibration  # pandas and the fits load only when a run needs them

    return load_calibration(scenario.calibration_paths(), scenario_accelerators(scenario))
