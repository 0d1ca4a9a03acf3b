"""Training speed ratios by accelerator count (issue 15): a multi-accelerator job's speed on another
model is step(reference, n) / step(accelerator, n), not the one-accelerator ratio. Checked against
Gavel's measured throughputs per (job type, batch, GPU count), shipped in measurements.csv."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from dcsim.build.model import PlacementSpeed
from dcsim.calibration import load_calibration
from dcsim.calibration.table import read_measurements
from dcsim.model import Cluster, Node


def gavel_ratios() -> pd.DataFrame:
    """Measured throughput ratio against V100 per (model, batch, count, nodes), with the predictions."""
    calibration = load_calibration()
    with resources.as_file(resources.files("dcsim.catalog").joinpath("measurements.csv")) as path:
        table = read_measurements(path)
    gavel = table[table["source"].str.startswith("Gavel") & (table["kind"] == "training")]
    keys = ["model", "batch", "count", "nodes"]
    v100 = gavel[gavel["accelerator"] == "V100"].groupby(keys)["time"].median()
    rows = []
    for row in gavel[gavel["accelerator"].isin(["P100", "K80"])].to_dict("records"):
        key = tuple(row[k] for k in keys)
        if key not in v100.index:
            continue
        model, batch, count, nodes = row["model"], row["batch"], int(row["count"]), int(row["nodes"])
        step = calibration.step_time
        rows.append({"accelerator": row["accelerator"], "count": count, "measured": v100[key] / row["time"],
                     "one_accelerator": calibration.relative_speed(model, row["accelerator"]),
                     "at_count": step(model, "V100", count, nodes, batch).total
                     / step(model, row["accelerator"], count, nodes, batch).total})
    return pd.DataFrame(rows)


def test_count_aware_ratios_match_gavel_better_than_one_accelerator_ratios() -> None:
    # Observed: median APE P100 20.8% -> 7.9%, K80 39.1% -> 12.3% (323 points). The synchronisation
    # terms were fitted to these same rows, so this is an in-sample comparison.
    frame = gavel_ratios()
    assert len(frame) > 300
    for accelerator, (before_bound, after_bound) in {"P100": (15, 10), "K80": (30, 15)}.items():
        part = frame[frame["accelerator"] == accelerator]
        before = np.median(np.abs(part["one_accelerator"] - part["measured"]) / part["measured"]) * 100
        after = np.median(np.abs(part["at_count"] - part["measured"]) / part["measured"]) * 100
        assert after < after_bound < before_bound < before, (accelerator, before, after)


def test_placement_speed_applies_the_count_ratio() -> None:
    """ResNet-50 on 4 P100s against 4 V100s: the issue's case (one-GPU ratio 0.64, measured 0.74-1.35
    by batch); the simulator's factor turns the table's one-GPU ratio into the 4-GPU one."""
    calibration = load_calibration()
    cluster = Cluster([Node(id=0, name="n0", pool="p", accelerator="P100", size=8, host_idle_w=0, host_busy_w=0)],
                      {"P100": calibration.catalog.accelerator("P100")})
    speed = PlacementSpeed(calibration, cluster, "V100")
    one = calibration.relative_speed("ResNet-50", "P100")
    step = calibration.step_time
    four = step("ResNet-50", "V100", 4).total / step("ResNet-50", "P100", 4).total
    assert one == pytest.approx(0.644, abs=0.01)
    assert one * speed("ResNet-50", "P100", 4, 1) == pytest.approx(four, rel=1e-12)
    assert four > 0.8
    assert speed("ResNet-50", "P100", 1, 1) == 1.0 and speed("generic", "P100", 4, 1) == 1.0
