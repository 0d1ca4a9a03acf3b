"""Gavel's measured training throughputs (K80, P100, V100) as `training` rows.

Gavel (Narayanan et al., OSDI 2020) profiled seven models at 1, 2, 4 and 8 GPUs, consolidated on one
server and spread over servers ("_unconsolidated"). Its throughput for a multi-GPU job counts the
steps of all workers together (ResNet-50 bs64 on V100: 4.39 / 7.92 / 9.45 / 17.30 steps/s for 1/2/4/8
GPUs), so the step time of one worker is count / steps_per_sec. Spread rows are recorded with
nodes = count (one GPU per server); Gavel does not say how they were spread. Rows with a
throughput of 0 (the configuration did not run, e.g. out of memory) are skipped and counted.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pandas as pd

from dcsim.calibration.table import check_row, measurement_frame
from dcsim.catalog import load_catalog

FILE = Path("gavel-throughputs") / "gavel_isolated_throughputs.csv"
ACCELERATORS = {"k80": "K80", "p100": "P100", "v100": "V100"}


def read(data: Path, skipped: Counter[str] | None = None) -> pd.DataFrame:
    catalog = load_catalog()
    rows = []
    skipped = skipped if skipped is not None else Counter()
    with open(data / FILE) as handle:
        for line, raw in enumerate(csv.DictReader(handle), start=2):
            name, _, spread = raw["accelerator"].partition("_")
            count = int(raw["scale_factor_gpus"])
            steps_per_sec = float(raw["steps_per_sec"])
            if steps_per_sec <= 0:
                skipped["gavel: throughput 0 (configuration did not run)"] += 1
                continue
            rows.append(check_row({
                "kind": "training", "model": raw["model"], "accelerator": ACCELERATORS[name], "count": count,
                "nodes": count if spread else 1, "batch": raw["batch_size"] or 1, "time": count / steps_per_sec,
                "source": f"Gavel {FILE.name}:{line} ({raw['accelerator']}; time = GPUs / steps per second)",
            }, catalog, f"{FILE}:{line}"))
    return measurement_frame(rows)
