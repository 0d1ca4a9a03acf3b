"""Frames and summary of disaggregated services (prefill and decode pools joined by KV transfers).

- kv_transfers: request_id, service, prefill_replica, decode_replica, bytes, start_s (the prefill's end,
  or later when no decode replica was ready), end_s (the KV cache is at the decode replica), transfer_s.
- pools: replica_id, service, pool (prefill | decode | mixed), one row per replica of a disaggregated service.

The summary (under each disaggregated service as `disaggregation`): KV transfers (count, bytes, time),
per pool the replicas started, busy fraction (iterating seconds over ready seconds) and occupancy (as
replica_busy_fraction), and goodput: requests per second that completed within both the TTFT and the
TPOT target (DistServe's measure; None without an SLO).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dcsim.metrics.summary import stats

TRANSFER_COLUMNS = ["request_id", "service", "prefill_replica", "decode_replica", "bytes", "start_s", "end_s",
                    "transfer_s"]
POOL_COLUMNS = ["replica_id", "service", "pool"]


def kv_transfers_frame(rows: Sequence[tuple[int, str, int, int, float, float, float]]) -> pd.DataFrame:
    """`rows`: (request id, service, prefill replica, decode replica, bytes, start, end)."""
    frame = pd.DataFrame.from_records([(*row, row[6] - row[5]) for row in rows], columns=TRANSFER_COLUMNS)
    return frame.astype({"request_id": "int64", "service": "str", "prefill_replica": "int64",
                         "decode_replica": "int64", "bytes": "float64", "start_s": "float64", "end_s": "float64",
                         "transfer_s": "float64"})


def pools_frame(rows: Sequence[tuple[int, str, str]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(rows), columns=POOL_COLUMNS).astype(
        {"replica_id": "int64", "service": "str", "pool": "str"})


def goodput(requests: pd.DataFrame, sim_time: float) -> float | None:
    """Requests per second that completed meeting both SLO targets; None when no request has an SLO."""
    met = requests["slo_met"]
    if met.isna().all() or sim_time <= 0:
        return None
    return float((met == 1.0).sum()) / sim_time


def disaggregation_section(service: str, requests: pd.DataFrame, replicas: pd.DataFrame, pools: pd.DataFrame,
                           transfers: pd.DataFrame, sim_time: float) -> dict[str, Any]:
    own = transfers[transfers["service"] == service]
    section: dict[str, Any] = {
        "kv_transfers": len(own),
        "kv_transfer_bytes": float(own["bytes"].sum()),
        "kv_transfer_s": stats(own["transfer_s"]),
        "pools": {},
        "goodput_rps": goodput(requests[requests["service"] == service], sim_time),
    }
    mine = pools[pools["service"] == service]
    for pool in ("prefill", "decode", "mixed"):
        if pool == "mixed" and not (mine["pool"] == pool).any():
            continue
        ids = set(mine.loc[mine["pool"] == pool, "replica_id"].tolist())
        part = replicas[replicas["replica_id"].isin(ids)]
        section["pools"][pool] = _pool(part, sim_time)
    return section


def _pool(replicas: pd.DataFrame, sim_time: float) -> Mapping[str, Any]:
    ready = replicas["ready_s"].to_numpy(dtype=float)
    ends = replicas["stopped_s"].fillna(sim_time).to_numpy(dtype=float)
    serving_time = float(np.nansum(np.maximum(ends - ready, 0.0)))
    return {
        "replicas_started": len(replicas),
        "requests_served": int(replicas["requests_completed"].sum()),
        "busy_fraction": float(replicas["busy_s"].sum()) / serving_time if serving_time > 0 else 0.0,
        "occupancy": float(replicas["occupied_s"].sum()) / serving_time if serving_time > 0 else 0.0,
        "energy_kwh": float(replicas["energy_j"].sum()) / 3.6e6,
    }
