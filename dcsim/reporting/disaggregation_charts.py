"""The chart of disaggregated services: requests in each pool over time, and KV-transfer times.

Drawn from the saved `pools`, `replica_timeseries` and `kv_transfers` frames; a run without a
disaggregated service has no `pools` frame and gets no chart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dcsim.reporting.charts import no_data, time_unit
from dcsim.reporting.drawing import Chart, save
from dcsim.reporting.inference_charts import run_end
from dcsim.results import RunResult

POOL_STYLES = {"prefill": "-", "decode": "--", "mixed": ":"}


def disaggregation_charts(result: RunResult) -> list[Chart]:
    if result.pools is None or not len(result.pools):
        return []
    return [("disaggregated_pools.png", lambda path: _pools_chart(result, path))]


def pool_levels(timeseries: pd.DataFrame, ids: set[int], end: float) -> tuple[np.ndarray, np.ndarray]:
    """Times and the requests waiting or in a batch summed over the replicas `ids` (each replica's level
    holds until its next row)."""
    rows = timeseries[timeseries["replica_id"].isin(ids)].sort_values(["time_s", "replica_id"], kind="stable")
    if rows.empty:
        return np.array([0.0, end]), np.array([0.0, 0.0])
    level = (rows["batch"] + rows["waiting"]).to_numpy(dtype=float)
    replicas = rows["replica_id"].to_numpy()
    previous = pd.Series(level).groupby(replicas).shift(1).fillna(0.0).to_numpy()
    totals = np.cumsum(level - previous)  # each row replaces its replica's previous level
    times = rows["time_s"].to_numpy(dtype=float)
    last = np.append(times[1:] != times[:-1], True)  # the level after every row of one instant
    return np.append(times[last], end), np.append(totals[last], totals[-1])


def _pools_chart(result: RunResult, path: Path) -> Path:
    assert result.pools is not None
    end = run_end(result)
    scale, unit = time_unit(end)
    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2, width_ratios=[2, 1])
    ts = result.replica_timeseries
    for service, part in result.pools.groupby("service", sort=True):
        for pool, rows in part.groupby("pool", sort=False):
            if ts is None or not len(ts):
                break
            times, levels = pool_levels(ts, set(rows["replica_id"]), end)
            left.step(times / scale, levels, where="post", ls=POOL_STYLES.get(str(pool), "-"), lw=1.0,
                      label=f"{service} {pool} ({len(rows)} replicas)")
    if left.lines:
        left.legend(fontsize=8, frameon=False)
    else:
        no_data(left, "no replica timeseries")
    left.set_xlabel(f"simulated time ({unit})")
    left.set_ylabel("requests waiting or in a batch")
    left.set_title("Requests in each pool", loc="left", fontsize=10)
    transfers = result.kv_transfers
    if transfers is not None and len(transfers):
        for service, rows in transfers.groupby("service", sort=True):
            values = np.sort(rows["transfer_s"].to_numpy(dtype=float)) * 1e3
            right.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=str(service))
        right.legend(fontsize=8, frameon=False)
        right.set_xscale("log")
    else:
        no_data(right, "no KV transfers")
    right.set_xlabel("KV-cache transfer (ms)")
    right.set_ylabel("share of transfers")
    right.set_title("KV transfer time (CDF)", loc="left", fontsize=10)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle("Disaggregated prefill and decode")
    return save(fig, path)
