"""Zeus (NSDI'23) GPU power-limit sweeps -> `power_cap` rows of the measurement table.

Each file summary_power_<gpu>.csv holds, per training job (dataset, network, batch size, optimizer) and
power limit, the epoch time and the mean GPU power. One row per (job, limit); every row is kept (the
files have no blanks or duplicates). `time` is the epoch time: the power fit only uses its ratio to the
same job's time at the highest limit.

The row `source` names the file and the job but not the limit, because the power fit recognises the
rows of one job by (accelerator, model, batch, count, source); the optimizer therefore goes into the
source, which keeps the two V100 shufflenetv2/cifar100 jobs (adadelta and adam, same batch) apart.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from dcsim.calibration.table import check_row, measurement_frame
from dcsim.catalog import load_catalog
from dcsim.errors import CalibrationError

FOLDER = "zeus-power-traces"
# file suffix -> accelerator name as the catalog knows it (canonicalised by check_row)
FILES = {"v100": "V100", "a40": "A40", "rtx6000": "RTX-6000", "p100": "P100"}
COLUMNS = ("dataset", "network", "batch_size", "optimizer", "power_limit", "time_per_epoch", "average_power")


def read(data: Path) -> pd.DataFrame:
    """All power-limit rows of the four GPUs; `data` is the shared data folder (or the Zeus folder)."""
    folder = data / FOLDER if (data / FOLDER).is_dir() else data
    catalog = load_catalog()
    rows: list[dict[str, Any]] = []
    for suffix, accelerator in FILES.items():
        path = folder / f"summary_power_{suffix}.csv"
        if not path.is_file():
            raise CalibrationError(f"{path}: Zeus power trace not found")
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [name for name in COLUMNS if name not in (reader.fieldnames or [])]
            if missing:
                raise CalibrationError(f"{path}: missing column(s) {', '.join(missing)}")
            for number, record in enumerate(reader, start=2):
                job = (f"{record['dataset']}/{record['network']} bs{record['batch_size']} "
                       f"{record['optimizer']}")
                raw = {
                    "kind": "power_cap",
                    "model": f"{record['network']}/{record['dataset']}",
                    "accelerator": accelerator,
                    "batch": record["batch_size"],
                    "power_cap": record["power_limit"],
                    "time": record["time_per_epoch"],
                    "power": record["average_power"],
                    "source": f"Zeus NSDI'23 {path.name}: job {job}",
                }
                rows.append(check_row(raw, catalog, f"{path}:{number}"))
    return measurement_frame(rows)
