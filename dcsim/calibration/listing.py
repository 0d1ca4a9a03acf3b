"""Text for `dcsim calibration list / show / report`: the catalog with sources and every fit's error."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

import pandas as pd

from dcsim.calibration import SECTIONS, Calibration
from dcsim.catalog import AcceleratorSpec, Figure
from dcsim.errors import CatalogError

_SHORT = {"peak_fp16_flops": "16-bit peak", "peak_fp32_flops": "FP32 peak", "peak_fp8_flops": "FP8 peak",
          "peak_int8_ops": "INT8 peak", "memory_bytes": "memory", "memory_bandwidth": "memory bandwidth",
          "interconnect_bandwidth": "interconnect", "network_bandwidth": "network (NIC)", "tdp_w": "TDP",
          "idle_w": "idle power"}
_UNITS = {"peak_fp16_flops": (1e12, "TFLOP/s"), "peak_fp32_flops": (1e12, "TFLOP/s"),
          "peak_fp8_flops": (1e12, "TFLOP/s"),
          "peak_int8_ops": (1e12, "TOP/s"), "memory_bytes": (1e9, "GB"), "memory_bandwidth": (1e9, "GB/s"),
          "interconnect_bandwidth": (1e9, "GB/s"), "network_bandwidth": (1e9 / 8, "Gb/s"), "tdp_w": (1, "W"),
          "idle_w": (1, "W")}  # `calibration show` prints each figure in the unit its source quotes


def list_text(calibration: Calibration) -> str:
    catalog = calibration.catalog
    lines = ["Accelerators (* = estimated figure; speeds: measured = fitted to measurements of the part itself, "
             "extrapolated = from its datasheet figures; `dcsim calibration show NAME` gives sources)",
             f"  {'name':<14} {'kind':<5} {'year':>4} {'16-bit peak':>12} {'memory':>9} {'mem bw':>10} "
             f"{'link':>10} {'TDP':>7} {'idle':>6}  speeds"]
    for name, spec in catalog.accelerators.items():
        origin = f"  [defined in {spec.origin}]" if spec.user_defined else ""
        lines.append(f"  {name:<14} {spec.kind:<5} {spec.year:>4} {_fig(spec.peak_fp16_flops, 1e12, 'T'):>12} "
                     f"{_fig(spec.memory_bytes, 1e9, 'GB'):>9} {_fig(spec.memory_bandwidth, 1e9, 'GB/s'):>10} "
                     f"{_fig(spec.interconnect_bandwidth, 1e9, 'GB/s'):>10} {_fig(spec.tdp_w, 1, 'W'):>7} "
                     f"{_fig(spec.idle_w, 1, 'W'):>6}  {calibration.speed_basis(name)}{origin}")
    lines += ["", "Models (training: how its step time is obtained)",
              f"  {'name':<24} {'family':<15} {'training calibration'}"]
    training = calibration.training
    names = sorted({*catalog.models, *training.models})
    for name in names:
        fit = training.models.get(name)
        family = fit.family if fit else catalog.models[name].family
        if fit is not None:
            how = f"measured on {', '.join(sorted(fit.anchors))}; alpha {fit.alpha:.2f} ({fit.alpha_basis})"
        elif catalog.models[name].kind == "llm":
            how = "6 x params x tokens / (MFU x peak)"
        else:
            how = "not calibrated"
        lines.append(f"  {name:<24} {family:<15} {how}")
    lines += ["", "Fit errors (absolute percentage error of predicted vs measured)", *error_lines(calibration)]
    lines += ["", f"Calibration from: {', '.join(calibration.origins)}"]
    return "\n".join(lines)


def error_lines(calibration: Calibration) -> list[str]:
    return ["  " + error.line() for error in calibration.errors()]


def show_text(calibration: Calibration, name: str) -> str:
    catalog = calibration.catalog
    try:
        return _accelerator_text(calibration, catalog.accelerator(name))
    except CatalogError:
        pass
    canonical = catalog.canonical_model(name) or (name if name in calibration.training.models else None)
    if canonical is None:
        known = [*catalog.accelerators, *catalog.models, *calibration.training.models]
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CatalogError(f"unknown accelerator or model {name!r}{hint} (`dcsim calibration list` shows them)")
    return _model_text(calibration, canonical)


def _accelerator_text(calibration: Calibration, spec: AcceleratorSpec) -> str:
    lines = [f"{spec.name} ({spec.vendor} {spec.kind}, {spec.year})"]
    if spec.user_defined:
        lines.append(f"  user-defined in {spec.origin}")
    lines.append(f"  speeds: {calibration.speed_basis(spec.name)}")
    if spec.description:
        lines.append(f"  {spec.description}")
    if spec.aliases:
        lines.append(f"  aliases: {', '.join(spec.aliases)}")
    for key, figure in spec.figures().items():
        mark = f" [estimated: {figure.note}]" if figure.estimated else ""
        lines.append(f"  {_SHORT[key]:<17} {_with_unit(key, figure.value):<14} {figure.source}{mark}")
    lines += _entries(calibration, spec.name)
    speeds = []
    for model in calibration.training.model_names():
        speeds.append(f"{model} {calibration.relative_speed(model, spec.name):.2f}")
    lines.append(f"  training speed vs {calibration.catalog.reference_accelerator} (one accelerator, at each model's "
                 "median measured batch; a job's batch_size changes it): " + ", ".join(speeds))
    return "\n".join(lines)


def _model_text(calibration: Calibration, name: str) -> str:
    catalog = calibration.catalog
    spec = catalog.models.get(name)
    lines = [f"{name}" + (f" ({spec.family} {spec.kind}): {spec.description}" if spec else " (from an overlay)")]
    if spec is not None:
        lines.append(f"  source: {spec.source}")
        shape = {k: getattr(spec, k) for k in ("params", "active_params", "layers", "hidden", "heads", "kv_heads",
                                              "ffn_hidden", "vocab", "context") if getattr(spec, k) is not None}
        if shape:
            lines.append("  shape: " + ", ".join(f"{k} {v:.4g}" for k, v in shape.items()))
    lines += _entries(calibration, name)
    if calibration.training.has_model(name):
        speeds = [f"{acc} {calibration.relative_speed(name, acc):.2f}" for acc in catalog.accelerators]
        fit = calibration.training.models.get(name)
        batch = f"its median measured batch, {next(iter(fit.anchors.values())).batch:g}" if fit else "any batch"
        lines.append(f"  training speed vs {catalog.reference_accelerator} (one accelerator, at {batch}): "
                     + ", ".join(speeds))
    return "\n".join(lines)


def _entries(calibration: Calibration, name: str) -> list[str]:
    """Every fitted entry keyed by `name` in any section, as YAML-like lines."""
    lines = []
    for section in SECTIONS:
        for path, value in _find(getattr(calibration, section).to_dict(), name, (section,)):
            lines.append(f"  {'.'.join(path)}: {_compact(value)}")
    return lines


def _find(tree: Any, name: str, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == name:
                yield (*path, str(key)), value
            elif key != "errors":
                yield from _find(value, name, (*path, str(key)))


def _with_unit(key: str, value: float) -> str:
    scale, unit = _UNITS[key]
    if unit == "GB" and value % 2**30 == 0:  # sources quoting GiB ("HBM2 32 GiB") read back as such
        scale, unit = 2**30, "GiB"
    return f"{value / scale:.4g} {unit}"


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _fig(figure: Figure | None, scale: float, unit: str) -> str:
    if figure is None:
        return "-"
    return f"{figure.value / scale:.4g}{unit}{'*' if figure.estimated else ''}"


def predictions(calibration: Calibration, table: pd.DataFrame) -> pd.DataFrame:
    """Predicted vs measured for every measurement row a fitted model can predict."""
    frames = [calibration.training.predictions(table),
              calibration.scaling.predictions(calibration.training, table),
              calibration.inference.predictions(table, calibration.catalog),
              calibration.power.predictions(table, calibration.catalog)]
    found = pd.concat([f for f in frames if not f.empty], ignore_index=True)
    # Rows of accelerators the family's model was not fitted to are predictions by extrapolation: their
    # own family (so the chart draws them in panels of their own) and basis column. Speeds are measured
    # where any speed model was fitted to the accelerator; power where a power curve was.
    power = {*calibration.power.serving, *calibration.power.training}
    found["basis"] = [("measured" if accelerator in power else "extrapolated") if family.startswith("power")
                      else calibration.speed_basis(accelerator)
                      for family, accelerator in zip(found["family"], found["accelerator"], strict=True)]
    extrapolated = found["basis"] != "measured"
    found.loc[extrapolated, "family"] = found.loc[extrapolated, "family"] + " (extrapolated)"
    return found
