"""Pollux's measured step and synchronisation times versus placement, as `training` rows.

Pollux (Qiao et al., OSDI 2021) measured six models at many placements ("44" = two nodes with four
GPUs each) and per-GPU batch sizes, with the exposed synchronisation time reported separately.
The snapshot does not name the GPU; the Pollux paper's testbed used NVIDIA T4 nodes, so the rows are
recorded as T4 (an attribution, stated in every row's source). Sources are short
("Pollux bert/placements.csv:12") because these rows are most of the shipped measurement table.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from dcsim.calibration.table import check_row, measurement_frame
from dcsim.catalog import load_catalog

FOLDER = Path("pollux-step-times")
MODELS = {"bert": "BERT", "cifar10": "CIFAR-10", "deepspeech2": "DeepSpeech2", "imagenet": "ImageNet",
          "ncf": "NCF", "yolov3": "YOLOv3"}
GPU = "T4"


def read(data: Path) -> pd.DataFrame:
    catalog = load_catalog()
    rows = []
    for folder, model in MODELS.items():
        for name in ("placements.csv", "scalability.csv"):
            path = FOLDER / folder / name
            with open(data / path) as handle:
                for line, raw in enumerate(csv.DictReader(handle), start=2):
                    if name == "placements.csv":
                        digits = [int(d) for d in raw["placement"]]
                        count, nodes = sum(digits), len(digits)
                    else:
                        count, nodes = int(raw["num_replicas"]), int(raw["num_nodes"])
                    rows.append(check_row({
                        "kind": "training", "model": model, "accelerator": GPU, "count": count, "nodes": nodes,
                        "batch": raw["local_bsz"], "time": raw["step_time"], "sync_time": raw["sync_time"],
                        "source": f"Pollux {folder}/{name}:{line} (T4 attributed)",
                    }, catalog, f"{path}:{line}"))
    return measurement_frame(rows)
