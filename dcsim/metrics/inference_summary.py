"""The `inference` section of summary.json, computed from the request and replica frames.

SLO attainment counts every request that arrived at a service with an SLO: one that completed within
its service's TTFT and TPOT targets meets it; rejected and unfinished requests miss it. Services
without an SLO are left out. Energy per output token divides the
serving replicas' accelerator energy (idle time included, hosts excluded) by completed output tokens.
`requests_after_horizon` counts requests the workload produced that were due after the horizon (the
counterpart of training's `jobs_after_horizon`), so rows read = requests + after horizon + skipped rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dcsim.metrics.summary import J_PER_KWH, stats


def inference_summary(requests: pd.DataFrame, replicas: pd.DataFrame, sim_time: float,
                      services: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Totals, then one entry per service under `services` (keys: service name)."""
    with_slo = [name for name, extra in services.items() if extra.get("slo")]
    section = _section(requests, replicas, sim_time, requests[requests["service"].isin(with_slo)])
    section["services"] = {
        name: {**_section(own := requests[requests["service"] == name], replicas[replicas["service"] == name],
                          sim_time, own if extra.get("slo") else own.iloc[:0]),
               **{k: v for k, v in extra.items() if k != "slo"}}
        for name, extra in services.items()
    }
    total = 0
    for name, extra in services.items():
        entry = section["services"][name]
        later = _after_horizon(entry["requests"], extra.get("workload"))
        entry = section["services"][name] = _with_after_horizon(entry, later)
        total += later
    return _with_after_horizon(section, total)


def _after_horizon(seen: int, workload: Mapping[str, Any] | None) -> int:
    """Requests the service's workload produced that never arrived: they were due after the horizon."""
    produced = workload.get("requests") if workload else None
    return int(produced) - seen if isinstance(produced, int) else 0


def _with_after_horizon(section: dict[str, Any], count: int) -> dict[str, Any]:
    """`section` with requests_after_horizon placed right after `requests`."""
    result: dict[str, Any] = {}
    for key, value in section.items():
        result[key] = value
        if key == "requests":
            result["requests_after_horizon"] = count
    return result


def _section(requests: pd.DataFrame, replicas: pd.DataFrame, sim_time: float,
             with_slo: pd.DataFrame) -> dict[str, Any]:
    """`with_slo`: the requests of services that have an SLO (attainment is over these only)."""
    state = requests["state"]
    completed = requests[state == "completed"]
    output = int(completed["output_tokens"].sum())
    energy = float(replicas["energy_j"].sum())
    ready = replicas["ready_s"].to_numpy(dtype=float)
    ends = replicas["stopped_s"].fillna(sim_time).to_numpy(dtype=float)
    serving_time = float(np.nansum(np.maximum(ends - ready, 0.0)))
    rejected = requests[state == "rejected"]
    return {
        "requests": len(requests),
        "completed": len(completed),
        "dropped": len(rejected),
        "unfinished": int((state == "unfinished").sum()),
        "rejected_by_reason": {str(k): int(v) for k, v in rejected["reason"].value_counts().sort_index().items()},
        "ttft_s": stats(completed["ttft_s"]),
        "tpot_s": stats(completed["tpot_s"]),
        "e2e_s": stats(completed["e2e_s"]),
        "queue_delay_s": stats(requests["queue_delay_s"]),
        "slo_attainment": float(with_slo["slo_met"].sum()) / len(with_slo) if len(with_slo) else None,
        "tokens_per_s": output / sim_time if sim_time > 0 else 0.0,
        "output_tokens": output,
        "prompt_tokens": int(completed["prompt_tokens"].sum()),
        "preemptions": int(requests["preemptions"].sum()),
        "serving_energy_kwh": energy / J_PER_KWH,
        "energy_per_output_token_j": energy / output if output else None,
        "replicas_started": len(replicas),
        "replica_busy_fraction": float(replicas["occupied_s"].sum()) / serving_time if serving_time > 0 else 0.0,
    }
