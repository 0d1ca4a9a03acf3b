"""Vidur's operator profiles (A100, H100) as `linear` rows: the GEMM time of a whole forward pass.

Vidur (Agrawal et al., MLSys 2024) times every operator of one transformer layer on one GPU shard
(ms, per layer) against the tokens in the batch and the tensor-parallel degree. Its GPUs are the
DGX A100 80 GB and DGX H100 80 GB machines of the paper, hence A100-80GB and H100-SXM here.

A row's time is (attn_pre_proj + attn_post_proj + mlp_up_proj + mlp_down_proj) x layers: the four
matrix multiplications whose weights make up the parameter count (QKV, attention output, gated-MLP
up and down). Layer norms, rotary embedding, activation, residual add and the embedding lookup are
left out: they move activations, not weights, so they do not follow the GEMM roofline. They are not
negligible (summed, a median 7% / 16% of the GEMM time for Llama-2-70B / 7B on A100, 11% / 22% on
H100, up to 63% for 7B at TP8 on H100); the end-to-end prefill rows (Splitwise) carry that time.
Each op contributes its `median`; token counts profiled twice (2,048 and 4,096) take the median of
both. Only power-of-two token counts (1 ... 4,096) are kept so the shipped table stays small: 13
counts x 4 TP degrees per file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dcsim.calibration.table import check_row, measurement_frame
from dcsim.catalog import load_catalog
from dcsim.errors import CalibrationError

FOLDER = Path("vidur-profiling") / "compute"
GPUS = {"a100": "A100-80GB", "h100": "H100-SXM"}
MODELS = ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-70b-hf")
LINEAR_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
TOKEN_COUNTS = tuple(2**i for i in range(13))


def read(data: Path) -> pd.DataFrame:
    """One linear row per (GPU, model, tokens, TP) of the four profiles."""
    catalog = load_catalog()
    rows = []
    columns = [f"time_stats.{op}.median" for op in LINEAR_OPS]
    for gpu, accelerator in GPUS.items():
        for name in MODELS:
            path = FOLDER / gpu / name / "mlp.csv"
            spec = catalog.model(name)
            if spec.layers is None:
                raise CalibrationError(f"catalog model {spec.name} has no layer count")
            profile = pd.read_csv(data / path)
            profile = profile[profile["num_tokens"].isin(TOKEN_COUNTS)]
            grouped = profile.groupby(["num_tokens", "num_tensor_parallel_workers"])[columns]
            medians, repeats = grouped.median().reset_index(), grouped.size().to_numpy()
            for (row, repeat) in zip(medians.to_dict("records"), repeats, strict=True):
                per_layer_ms = sum(float(row[c]) for c in columns)
                tokens, tp = int(row["num_tokens"]), int(row["num_tensor_parallel_workers"])
                what = f"{tokens} tokens, tp{tp}"
                rows.append(check_row({
                    "kind": "linear", "model": spec.name, "accelerator": accelerator, "count": tp,
                    "tokens": tokens, "time": per_layer_ms * spec.layers / 1000.0,
                    "source": f"{path}: {what}; time = ({' + '.join(LINEAR_OPS)}) medians x {spec.layers} layers"
                              + (f" (median of {repeat} profiles)" if repeat > 1 else ""),
                }, catalog, f"{path} ({what})"))
    return measurement_frame(rows)
