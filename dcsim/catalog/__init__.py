"""The shipped hardware and model catalog, each figure with a source.

Data lives in `accelerators.yaml` and `models.yaml` (hand-maintained from datasheets, papers and
model configs). The fitted performance and power models live in `calibration.yaml` and are read by
dcsim.calibration. This module only reads the data files.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from dcsim import units
from dcsim.errors import CatalogError

SHIPPED = "shipped catalog"
KINDS = ("gpu", "tpu", "other")


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
    memory_bandwidth: Figure | None = None
    interconnect_bandwidth: Figure | None = None
    peak_fp32_flops: Figure | None = None
    peak_fp8_flops: Figure | None = None
    peak_int8_ops: Figure | None = None
    network_bandwidth: Figure | None = None
    year: int = 0
    aliases: tuple[str, ...] = ()
    description: str = ""
    origin: str = SHIPPED  # where the definition came from: the shipped catalog, or a scenario or overlay file
    like: str | None = None  # a measured relative whose fitted efficiency terms this part borrows

    def figures(self) -> dict[str, Figure]:
        """Every figure of this accelerator by field name (for listings)."""
        return {n: f for n in _FIELD_KINDS if (f := getattr(self, n)) is not None}

    @property
    def user_defined(self) -> bool:
        return self.origin != SHIPPED


@dataclass(frozen=True)
class ModelSpec:
    """A trainable or servable model. LLM entries carry their shape, which the roofline models use."""

    name: str
    family: str
    kind: str  # "dnn" or "llm"
    source: str
    description: str = ""
    params: float | None = None
    active_params: float | None = None
    layers: int | None = None
    hidden: int | None = None
    heads: int | None = None
    kv_heads: int | None = None
    ffn_hidden: int | None = None
    vocab: int | None = None
    context: int | None = None
    aliases: tuple[str, ...] = ()

    @property
    def compute_params(self) -> float:
        """Parameters touched per token (active experts only for mixture-of-experts models)."""
        value = self.active_params or self.params
        if value is None:
            raise CatalogError(f"model {self.name!r} has no parameter count")
        return value


_LLM_PATTERN = re.compile(r"^llm-(\d+(?:\.\d+)?)([bm])$", re.IGNORECASE)


def parameterised_llm(name: str) -> ModelSpec | None:
    """`llm-13b` / `llm-350m`: a dense decoder-only transformer known only by its parameter count."""
    match = _LLM_PATTERN.match(name.strip())
    if match is None:
        return None
    params = float(match.group(1)) * (1e9 if match.group(2).lower() == "b" else 1e6)
    if params <= 0:
        return None
    return ModelSpec(name=name.strip().lower(), family="llm", kind="llm", params=params,
                     source="parameterised: dense transformer given its parameter count",
                     description=f"dense decoder-only transformer with {params:.3g} parameters")


@dataclass(frozen=True)
class Catalog:
    reference_accelerator: str
    accelerators: dict[str, AcceleratorSpec]
    models: dict[str, ModelSpec] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)
    _model_aliases: dict[str, str] = field(default_factory=dict)

    def model(self, name: str) -> ModelSpec:
        """Look up a model by name or alias, or `llm-<N>b`; unknown names list the close matches."""
        canonical = self._model_aliases.get(name.lower())
        if canonical is not None:
            return self.models[canonical]
        llm = parameterised_llm(name)
        if llm is None:
            raise CatalogError(_unknown("model", name, list(self.models)) + "; or llm-<N>b for an N-billion "
                               "parameter transformer")
        return llm

    def canonical_model(self, name: str) -> str | None:
        """Canonical catalog name of a model or alias, None when the catalog does not list it."""
        return self._model_aliases.get(name.lower())

    def accelerator(self, name: str) -> AcceleratorSpec:
        """Look up an accelerator by name or alias; unknown names list the close matches."""
        canonical = self.canonical_accelerator(name)
        return self.accelerators[canonical]

    def canonical_accelerator(self, name: str) -> str:
        canonical = self._aliases.get(name.lower())
        if canonical is None:
            raise CatalogError(_unknown("accelerator", name, list(self.accelerators), self._aliases))
        return canonical

    def with_accelerators(self, specs: tuple[AcceleratorSpec, ...]) -> Catalog:
        """A copy with user-defined accelerators added. A name or alias that already names a shipped part
        is accepted only for an identical definition (then ignored); anything else is an error."""
        if not specs:
            return self
        accelerators = dict(self.accelerators)
        aliases = dict(self._aliases)
        for spec in specs:
            clash = next((aliases[a.lower()] for a in (spec.name, *spec.aliases) if a.lower() in aliases), None)
            if clash is not None:
                if _same_part(accelerators[clash], spec):
                    continue
                where = f"{spec.origin}: " if spec.origin else ""
                raise CatalogError(f"{where}accelerators.{spec.name}: the name {spec.name!r} (or an alias) "
                                   f"already names the {accelerators[clash].origin} part {clash!r} with other "
                                   "figures; choose another name")
            accelerators[spec.name] = spec
            _add_aliases(aliases, spec.name, list(spec.aliases), spec.origin)
        return Catalog(reference_accelerator=self.reference_accelerator, accelerators=accelerators,
                       models=self.models, _aliases=aliases, _model_aliases=self._model_aliases)


def _same_part(shipped: AcceleratorSpec, spec: AcceleratorSpec) -> bool:
    """Whether a redefinition repeats a part's figures (sources and notes may differ)."""
    def values(part: AcceleratorSpec) -> dict[str, float]:
        return {name: figure.value for name, figure in part.figures().items()}
    return shipped.name == spec.name and values(shipped) == values(spec)


def _unknown(what: str, name: str, choices: list[str], aliases: dict[str, str] | None = None) -> str:
    """`unknown ... ; did you mean ...`, matching aliases as well (so `H300` suggests H100 and H200, whose
    canonical names are longer than the alias people type)."""
    spellings = {choice.lower(): choice for choice in choices}
    for alias, owner in (aliases or {}).items():
        spellings.setdefault(alias, owner)
    close = difflib.get_close_matches(name.lower(), list(spellings), n=8, cutoff=0.4)
    suggestions = list(dict.fromkeys(spellings[match] for match in close))[:3]
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    return f"unknown {what} {name!r}{hint} (known: {', '.join(sorted(choices))})"


def _figure(raw: Any, kind: units.Kind | None, where: str) -> Figure:
    if not isinstance(raw, dict) or "value" not in raw or "source" not in raw:
        raise CatalogError(f"{where}: expected a mapping with value and source, got {raw!r}")
    value = units.parse(raw["value"], kind) if kind else float(raw["value"])
    return Figure(value=value, source=str(raw["source"]), estimated=bool(raw.get("estimated", False)),
                  note=str(raw.get("note", "")))


_FIELD_KINDS: dict[str, units.Kind | None] = {
    "peak_fp16_flops": "flops", "peak_fp32_flops": "flops", "peak_fp8_flops": "flops", "peak_int8_ops": "flops",
    "memory_bytes": "bytes", "memory_bandwidth": "bandwidth", "interconnect_bandwidth": "bandwidth",
    "network_bandwidth": "bandwidth", "tdp_w": "power", "idle_w": "power",
}
_LLM_FIELDS = ("params", "active_params", "layers", "hidden", "heads", "kv_heads", "ffn_hidden", "vocab", "context")


def load_shipped_yaml(text: str) -> Any:
    """Parse a YAML file shipped with dcsim: with libyaml's C parser where PyYAML has it (about ten
    times faster than the pure-Python one, and every run reads the catalog and calibration)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@cache
def load_catalog() -> Catalog:
    """Read the shipped catalog once per process."""
    package = resources.files("dcsim.catalog")
    raw = load_shipped_yaml(package.joinpath("accelerators.yaml").read_text())
    accelerators: dict[str, AcceleratorSpec] = {}
    aliases: dict[str, str] = {}
    for name, spec in raw["accelerators"].items():
        where = f"catalog/accelerators.yaml: accelerators.{name}"
        figures: dict[str, Any] = {key: _figure(spec[key], kind, f"{where}.{key}")
                                   for key, kind in _FIELD_KINDS.items() if key in spec}
        if spec["kind"] not in KINDS:
            raise CatalogError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {spec['kind']!r}")
        accelerators[name] = AcceleratorSpec(
            name=name, kind=spec["kind"], vendor=spec["vendor"], aliases=tuple(spec.get("aliases", [])),
            description=spec.get("description", ""), year=int(spec.get("year", 0)), **figures,
        )
        _add_aliases(aliases, name, spec.get("aliases", []), "accelerators.yaml")
    models, model_aliases = _load_models(package.joinpath("models.yaml").read_text())
    return Catalog(reference_accelerator=raw["reference_accelerator"], accelerators=accelerators,
                   models=models, _aliases=aliases, _model_aliases=model_aliases)


def _add_aliases(table: dict[str, str], name: str, aliases: list[str], where: str) -> None:
    for alias in (name, *aliases):
        owner = table.setdefault(alias.lower(), name)
        if owner != name:
            raise CatalogError(f"catalog/{where}: alias {alias!r} of {name!r} already names {owner!r}")


def _load_models(text: str) -> tuple[dict[str, ModelSpec], dict[str, str]]:
    raw = load_shipped_yaml(text)
    models: dict[str, ModelSpec] = {}
    aliases: dict[str, str] = {}
    for name, spec in raw["models"].items():
        numbers: dict[str, Any] = {}
        for key in _LLM_FIELDS:
            if spec.get(key) is not None:
                numbers[key] = float(spec[key]) if key in ("params", "active_params") else int(spec[key])
        models[name] = ModelSpec(name=name, family=spec["family"], kind=spec["kind"], source=spec["source"],
                                 description=spec.get("description", ""), aliases=tuple(spec.get("aliases", [])),
                                 **numbers)
        _add_aliases(aliases, name, spec.get("aliases", []), "models.yaml")
    return models, aliases
