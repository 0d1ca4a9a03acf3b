"""Rebuild dcsim/catalog/training_speeds.csv from ../shared/data (Gavel measurements).

Relative training speed of each model type on each accelerator, relative to the reference
accelerator (V100). K80, P100 and V100 are measured (Gavel, one GPU, geometric mean over the
batch sizes measured on all three). Other accelerators are estimated: for each model type we fit
speed ratio = (16-bit peak ratio to V100) ** alpha by least squares on the measured K80 and P100
points (alpha clamped at 0), then apply alpha to the other accelerator's 16-bit peak. The row says which.
The "generic" model type is the geometric mean over the measured model types.

Usage: python tools/build_catalog.py [--data ../shared/data] [--check]
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "dcsim" / "catalog"
OUT = CATALOG / "training_speeds.csv"
GAVEL_NAMES = {"k80": "K80", "p100": "P100", "v100": "V100"}
REFERENCE = "V100"
GAVEL_SOURCE = "Gavel simulation_throughputs.json (OSDI 2020), isolated, 1 GPU"


def _peaks() -> dict[str, float]:
    with open(CATALOG / "accelerators.yaml") as handle:
        catalog = yaml.safe_load(handle)
    return {name: float(spec["peak_fp16_flops"]["value"]) for name, spec in catalog["accelerators"].items()}


def _measured_ratios(data: Path) -> dict[str, dict[str, float]]:
    """model -> accelerator -> geometric-mean speed ratio to V100 over shared batch sizes."""
    speeds: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    with open(data / "gavel-throughputs" / "gavel_isolated_throughputs.csv") as handle:
        for row in csv.DictReader(handle):
            accelerator = GAVEL_NAMES.get(row["accelerator"])
            if accelerator is None or row["scale_factor_gpus"] != "1":
                continue
            speeds[(row["model"], row["batch_size"])][accelerator] = float(row["steps_per_sec"])
    logs: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (model, _batch), by_accelerator in speeds.items():
        if set(by_accelerator) != set(GAVEL_NAMES.values()) or min(by_accelerator.values()) <= 0:
            continue
        for accelerator, value in by_accelerator.items():
            logs[model][accelerator].append(math.log(value / by_accelerator[REFERENCE]))
    return {
        model: {acc: math.exp(sum(v) / len(v)) for acc, v in by_acc.items()} for model, by_acc in logs.items()
    }


def build(data: Path) -> str:
    peaks = _peaks()
    measured = _measured_ratios(data)
    rows: list[dict[str, str]] = []
    for model in sorted(measured):
        ratios = measured[model]
        xs = [math.log(peaks[a] / peaks[REFERENCE]) for a in ratios if a != REFERENCE]
        ys = [math.log(ratios[a]) for a in ratios if a != REFERENCE]
        # Clamped at 0: a model that did not speed up from K80 to V100 (Recommendation, CPU-bound in
        # Gavel) is assumed not to speed up further, rather than to slow down on newer accelerators.
        alpha = max(0.0, sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs))
        for accelerator in peaks:
            if accelerator in ratios:
                value, source = ratios[accelerator], GAVEL_SOURCE
                estimated = "false"
            else:
                value = (peaks[accelerator] / peaks[REFERENCE]) ** alpha
                source = f"estimated: (16-bit peak ratio to V100)^{alpha:.3f}, alpha fitted on Gavel K80/P100"
                estimated = "true"
            rows.append({"model": model, "accelerator": accelerator, "relative_speed": f"{value:.4f}",
                         "estimated": estimated, "source": source})
    for accelerator in peaks:
        values = [float(r["relative_speed"]) for r in rows if r["accelerator"] == accelerator]
        generic = math.exp(sum(math.log(v) for v in values) / len(values))
        any_estimated = any(r["estimated"] == "true" for r in rows if r["accelerator"] == accelerator)
        rows.append({"model": "generic", "accelerator": accelerator, "relative_speed": f"{generic:.4f}",
                     "estimated": "true" if any_estimated else "false",
                     "source": "geometric mean of the model rows above"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["model", "accelerator", "relative_speed", "estimated", "source"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--check", action="store_true", help="exit 1 if the shipped file differs")
    args = parser.parse_args()
    if not (args.data / "gavel-throughputs").is_dir():
        print(f"error: {args.data}/gavel-throughputs not found", file=sys.stderr)
        return 2
    text = build(args.data)
    if args.check:
        same = OUT.exists() and OUT.read_text() == text
        print("catalog up to date" if same else "catalog differs from a rebuild")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
