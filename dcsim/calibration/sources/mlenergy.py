"""ML.ENERGY LLM serving measurements -> `decode` rows with per-GPU power, shaped for the power fit.

Two files (see their SOURCE.md):
- benchmark v3 (mlenergy-benchmark-v3/llm_configurations.csv, H100 and B200, vLLM 2025);
- leaderboard v2 (mlenergy-leaderboard-v2/llm_text_generation.csv, A100-40GB and H100, 2024 stack).

Columns written:
- `power` = mean W per GPU. v3 `avg_power_watts` is the total over `num_gpus`: it equals
  energy_per_token_joules x output_throughput to machine precision (all 565 rows), and divided by
  num_gpus it stays below TDP (max 694 W on H100, 976 W on B200) where undivided it would reach
  7.7 kW for 8 x B200. v2 has no power field; SOURCE.md derives the all-GPU power as energy per
  request x throughput / output tokens, which we divide by tp.
- `time` = inter-token latency: v3 median ITL, v2 mean TPOT.
- `batch` = mean batch per replica (`avg_batch_size`); `count` = GPUs per replica (v3 num_gpus, which
  is tensor x expert parallel when data_parallel is 1; v2 tp).
- `params` / `active_params` from v3 (billions x 1e9); v2 lists none.
- `tokens` = mean context per request, APPROXIMATED as half the mean output length: neither file
  has prompt lengths, so this is the mean number of generated tokens in context over a request's
  decode steps and undercounts the true context by the (unknown) mean prompt length. The power fit
  does not use it; the row source says so.

Skipped rows (counted by `skipped`, never silent):
- v3 rows with data_parallel > 1 (16): avg_batch_size tracks the global max_num_seqs while the
  throughput is 6-87% of batch / ITL, so the batch per replica cannot be told;
- v2 rows with pp > 1 (17): `count` cannot express pipeline stages;
- v2 H100 rows (151 with pp = 1): superseded by v3 H100. At equal model and batch the older v2 stack
  runs ~3x slower per token and draws about half the per-GPU power (e.g. Llama-3.1-8B, batch 64:
  305 W v2 vs 610 W v3), so pooling both would fit neither. `read_superseded` returns them for a
  cross-dataset check.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from dcsim.calibration.table import check_row, measurement_frame
from dcsim.catalog import Catalog, load_catalog
from dcsim.errors import CalibrationError

V3 = Path("mlenergy-benchmark-v3") / "llm_configurations.csv"
V2 = Path("mlenergy-leaderboard-v2") / "llm_text_generation.csv"
TOKENS_NOTE = "tokens = output/2 (no prompt lengths in the data)"
SKIP_V3_DP = "v3: data_parallel > 1 (batch per replica ambiguous)"
SKIP_V2_PP = "v2: pipeline parallel pp > 1 (count cannot express stages)"
SKIP_V2_H100 = "v2: H100 superseded by v3 H100 (older stack; see read_superseded)"
V2_SUPERSEDED = {"NVIDIA H100 80GB HBM3"}


def read(data: Path, skipped: Counter[str] | None = None) -> pd.DataFrame:
    """The usable decode rows of both files; `data` is the shared data folder. Skips are added to
    `skipped` (as gavel.read does) and can be had alone from `skipped(data)`."""
    catalog = load_catalog()
    rows: list[dict[str, Any]] = []
    for reason, row in _all_rows(data, catalog):
        if reason:
            if skipped is not None:
                skipped[f"ML.ENERGY {reason}"] += 1
        else:
            rows.append(row)
    return measurement_frame(rows)


def read_superseded(data: Path) -> pd.DataFrame:
    """The v2 H100 rows kept out of `read`, for checking a fit against an independent dataset."""
    catalog = load_catalog()
    return measurement_frame(row for kept, row in _all_rows(data, catalog) if kept == SKIP_V2_H100)


def skipped(data: Path) -> dict[str, int]:
    """How many rows each skip rule dropped (see the module docstring)."""
    catalog = load_catalog()
    counts = Counter(reason for reason, _ in _all_rows(data, catalog) if reason)
    return {reason: counts.get(reason, 0) for reason in (SKIP_V3_DP, SKIP_V2_PP, SKIP_V2_H100)}


def _all_rows(data: Path, catalog: Catalog) -> Iterator[tuple[str, dict[str, Any]]]:
    """(skip reason or "", checked row) for every row of both files; skipped rows may be {}."""
    yield from _records(data / V3, _v3_row, catalog)
    yield from _records(data / V2, _v2_row, catalog)


def _records(path: Path, convert: Callable[[dict[str, str], str], tuple[str, dict[str, Any]]],
             catalog: Catalog) -> Iterator[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise CalibrationError(f"{path}: ML.ENERGY file not found")
    with path.open(newline="") as handle:
        for number, record in enumerate(csv.DictReader(handle), start=2):
            where = f"{path}:{number}"
            try:
                reason, raw = convert(record, f"{path.name} line {number}")
            except (KeyError, ValueError, ZeroDivisionError) as exc:
                raise CalibrationError(f"{where}: unreadable ML.ENERGY row ({exc!r})") from None
            if reason == SKIP_V2_H100:
                yield reason, check_row(raw, catalog, where)
            elif reason:
                yield reason, {}
            else:
                yield "", check_row(raw, catalog, where)


def _v3_row(record: dict[str, str], where: str) -> tuple[str, dict[str, Any]]:
    gpus = int(record["num_gpus"])
    if int(record["data_parallel"]) > 1:
        return SKIP_V3_DP, {}
    return "", {
        "kind": "decode", "model": record["model_id"], "accelerator": record["gpu_model"],
        "count": gpus, "batch": float(record["avg_batch_size"]),
        "tokens": float(record["avg_output_len"]) / 2.0,
        "time": float(record["median_itl_ms"]) / 1000.0,
        "power": float(record["avg_power_watts"]) / gpus,
        "params": float(record["total_params_billions"]) * 1e9,
        "active_params": float(record["activated_params_billions"]) * 1e9,
        "source": (f"ML.ENERGY benchmark v3 {where}: {record['task']}, tp{record['tensor_parallel']} "
                   f"ep{record['expert_parallel']} {record['weight_precision']}, max_num_seqs "
                   f"{record['max_num_seqs']}; power = avg_power_watts / num_gpus; {TOKENS_NOTE}"),
    }


def _v2_row(record: dict[str, str], where: str) -> tuple[str, dict[str, Any]]:
    if int(record["pp"]) > 1:
        return SKIP_V2_PP, {}
    tp = int(record["tp"])
    raw = {
        "kind": "decode", "model": record["model"], "accelerator": record["gpu"], "count": tp,
        "batch": float(record["avg_batch_size"]), "tokens": float(record["avg_output_tokens"]) / 2.0,
        "time": float(record["avg_tpot_s"]),
        "power": float(record["avg_power_W_all_gpus_derived"]) / tp,
        "source": (f"ML.ENERGY leaderboard v2 {where}: {record['task']}, tp{tp}, max batch "
                   f"{record['max_batch_size']}; power = derived all-GPU power / tp; {TOKENS_NOTE}"),
    }
    return (SKIP_V2_H100 if record["gpu"] in V2_SUPERSEDED else ""), raw
