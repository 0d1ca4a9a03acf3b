"""MaxText's published TPU training performance (v5e, v5p, v6e) as `training` rows of LLMs.

MaxText reports model FLOP/s per chip (or tokens/s per chip) for whole slices. A row is recorded as
one sequence per chip per step (batch 1, tokens = sequence length, 2048 where not given), with the
step time that reproduces the published figure under the 6 x params x tokens FLOP count:
time = 6 x params x tokens / (TFLOP/s per chip), or tokens / (tokens/s per chip). The nodes column
counts slices: inside a slice chips talk over ICI, between slices over the data-center network.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from dcsim.calibration.table import check_row, measurement_frame
from dcsim.catalog import load_catalog

FILE = Path("maxtext-tpu-perf") / "tpu_training_perf.csv"
DEFAULT_SEQUENCE = 2048


def read(data: Path) -> pd.DataFrame:
    catalog = load_catalog()
    rows = []
    with open(data / FILE) as handle:
        for line, raw in enumerate(csv.DictReader(handle), start=2):
            model = catalog.model(raw["model"])
            tokens = float(raw["seq_len"] or DEFAULT_SEQUENCE)
            slices = re.match(r"^(\d+)x ", raw["slice_config"])
            if raw["tflops_per_chip"]:
                time = 6 * model.compute_params * tokens / (float(raw["tflops_per_chip"]) * 1e12)
                measured = f"{raw['tflops_per_chip']} TFLOP/s per chip"
            else:
                time = tokens / float(raw["tokens_per_sec_per_chip"])
                measured = f"{raw['tokens_per_sec_per_chip']} tokens/s per chip"
            rows.append(check_row({
                "kind": "training", "model": model.name, "accelerator": raw["accelerator"],
                "count": raw["chips"], "nodes": int(slices.group(1)) if slices else 1, "batch": 1,
                "tokens": tokens, "time": time,
                "source": f"MaxText {raw['upstream_file']} via {FILE} line {line} ({raw['slice_config']}, "
                          f"{measured}; step time of one {tokens:.0f}-token sequence per chip)",
            }, catalog, f"{FILE}:{line}"))
    return measurement_frame(rows)
