"""Splitwise's measured prefill and decode latencies (A100-80GB, H100-80GB) as `prefill` / `decode` rows.

splitwise-sim (Patel et al., ISCA 2024) ships perf_model.csv: Llama-2-70B (TP 2/4/8) and BLOOM-176B
(TP 8), one-factor-at-a-time sweeps of prompt length, batch and output length around prompt 512 /
batch 1 / output 128, five repeats each; prompt_time is the prefill of the whole batch and token_time
one decode iteration, both in milliseconds.

Aggregation (median over repeats, so one slow run does not move the row):
- prefill: one row per (model, GPU, TP, prompt, batch), the median prompt_time of every run with that
  prompt and batch, whatever its output length: the prompt phase does not depend on how many tokens
  are generated afterwards (the base point prompt 512 / batch 1 has 45 runs across the three sweeps).
- decode: one row per configuration including the output length; tokens = prompt + output / 2, the
  mean context a request has over its decode iterations (context grows linearly from prompt to
  prompt + output, and token_time is the mean iteration time).

Skipped (counted in `skipped`):
- hardware `h100-80gb-pcap`: its token_time equals the h100-80gb value of the same configuration in
  every row and its prompt_time is the h100-80gb value x 1.300 exactly (420 of 420 rows), so it is a
  scaled copy rather than a measurement, and no cap value is given.
- configurations whose prefill would beat the 16-bit peak of the GPUs (2 x params x tokens / (TP x
  peak) > prompt_time): Llama-2-70B TP2 batch 64 on both GPUs reports 0.79 s / 0.36 s for 32,768
  prompt tokens, below the 7.3 s / 2.3 s the datasheet peak allows; their decode rows go too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dcsim.calibration.table import check_row, measurement_frame
from dcsim.catalog import load_catalog
from dcsim.errors import CalibrationError

FILE = Path("splitwise-perf-model") / "perf_model.csv"
ACCELERATORS = {"a100-80gb": "A100-80GB", "h100-80gb": "H100-SXM"}
SKIP_PCAP = "splitwise: h100-80gb-pcap (scaled copy of h100-80gb: token_time equal, prompt_time x 1.3)"
SKIP_PEAK = "splitwise: prefill faster than the datasheet peak FLOP/s allows"


def read(data: Path, skipped: Counter[str] | None = None) -> pd.DataFrame:
    """Prefill and decode rows of perf_model.csv, repeats aggregated by their median."""
    catalog = load_catalog()
    skipped = skipped if skipped is not None else Counter()
    runs = pd.read_csv(data / FILE)
    pcap = runs["hardware"] == "h100-80gb-pcap"
    skipped[SKIP_PCAP] += int(pcap.sum())
    runs = runs[~pcap]
    unknown = sorted(set(runs["hardware"]) - set(ACCELERATORS))
    if unknown:
        raise CalibrationError(f"{FILE}: unknown hardware {unknown[0]!r} (known: {', '.join(ACCELERATORS)})")
    config = ["model", "hardware", "tensor_parallel", "prompt_size", "batch_size"]
    prefill = runs.groupby(config)["prompt_time"].agg(["median", "size"]).reset_index()
    decode = runs.groupby([*config, "token_size"])["token_time"].agg(["median", "size"]).reset_index()

    impossible: set[tuple[object, ...]] = set()
    for row in prefill.to_dict("records"):
        spec = catalog.model(str(row["model"]))
        peak = catalog.accelerators[ACCELERATORS[str(row["hardware"])]].peak_fp16_flops.value
        flops = 2.0 * spec.compute_params * row["prompt_size"] * row["batch_size"]
        if flops / (row["tensor_parallel"] * peak) > row["median"] / 1000.0:
            impossible.add(tuple(row[c] for c in config))

    rows = []
    for row in prefill.to_dict("records"):
        key = tuple(row[c] for c in config)
        if key in impossible:
            skipped[SKIP_PEAK] += 1
            continue
        what = _what(row)
        rows.append(check_row({
            "kind": "prefill", "model": row["model"], "accelerator": ACCELERATORS[str(row["hardware"])],
            "count": row["tensor_parallel"], "batch": row["batch_size"], "tokens": row["prompt_size"],
            "time": row["median"] / 1000.0,
            "source": f"{FILE}: {what}; time = median prompt_time of {row['size']} runs (all output lengths)",
        }, catalog, f"{FILE} ({what})"))
    for row in decode.to_dict("records"):
        key = tuple(row[c] for c in config)
        if key in impossible:
            skipped[SKIP_PEAK] += 1
            continue
        what = f"{_what(row)}, output {row['token_size']}"
        rows.append(check_row({
            "kind": "decode", "model": row["model"], "accelerator": ACCELERATORS[str(row["hardware"])],
            "count": row["tensor_parallel"], "batch": row["batch_size"],
            "tokens": row["prompt_size"] + row["token_size"] / 2.0, "time": row["median"] / 1000.0,
            "source": f"{FILE}: {what}; time = median token_time of {row['size']} runs; "
                      "tokens = prompt + output/2 (mean context)",
        }, catalog, f"{FILE} ({what})"))
    return measurement_frame(rows)


def _what(row: Mapping[Hashable, Any]) -> str:
    return (f"{row['model']} on {row['hardware']}, tp{row['tensor_parallel']}, prompt {row['prompt_size']}, "
            f"batch {row['batch_size']}")
