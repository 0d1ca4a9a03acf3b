"""Frames of inference runs, with fixed columns (part of the metrics contract, README "Outputs").

- requests: request_id, service, arrival_s, replica (-1 if never routed), admitted_s, first_token_s,
  end_s, queue_delay_s (first admission - arrival), ttft_s, tpot_s ((end - first token) / (output - 1)),
  e2e_s, prompt_tokens, output_tokens, preemptions, state (completed | rejected | unfinished), reason,
  slo_met (1.0 / 0.0 for completed requests of services with an SLO, NaN otherwise).
- replicas: replica_id, service, accelerator, tensor_parallel, node, requested_s, ready_s, stopped_s,
  kv_capacity_tokens, requests_completed, output_tokens, busy_s (seconds spent iterating, with at least
  one request in the batch), occupied_s (seconds x the share of the replica's capacity in use: 1 while
  requests wait at it, else the larger of batch / max_batch and KV use / KV capacity, as sampled at its
  events), energy_j (accelerators of
  the replica, from its start until it stopped or the run ended).
- replica_timeseries: time_s, replica_id, batch, waiting, kv_used_tokens, power_w; each row holds for
  its replica until that replica's next row (KV use is sampled at events: it grows between them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd

from dcsim.metrics.protocol import ReplicaRecord
from dcsim.model import Request, RequestState

REQUEST_COLUMNS = [
    "request_id", "service", "arrival_s", "replica", "admitted_s", "first_token_s", "end_s", "queue_delay_s",
    "ttft_s", "tpot_s", "e2e_s", "prompt_tokens", "output_tokens", "preemptions", "state", "reason", "slo_met",
]
REPLICA_COLUMNS = [
    "replica_id", "service", "accelerator", "tensor_parallel", "node", "requested_s", "ready_s", "stopped_s",
    "kv_capacity_tokens", "requests_completed", "output_tokens", "busy_s", "occupied_s", "energy_j",
]
REPLICA_TS_COLUMNS = ["time_s", "replica_id", "batch", "waiting", "kv_used_tokens", "power_w"]

_INT = {"request_id", "replica", "prompt_tokens", "output_tokens", "preemptions", "replica_id", "tensor_parallel",
        "kv_capacity_tokens", "requests_completed", "batch", "waiting", "kv_used_tokens"}
_TEXT = {"service", "state", "reason", "accelerator", "node"}


def _dtypes(columns: list[str]) -> dict[str, str]:
    return {c: "int64" if c in _INT else "str" if c in _TEXT else "float64" for c in columns}


def numeric_columns(rows: Sequence[tuple[float, ...]], kinds: Sequence[str]) -> list[np.ndarray]:
    """Columns (int64 or float64, as `kinds` says) of rows of numbers, as astype would make them.

    All cells go through one float64 array (C level, no per-cell type discovery: about half the time
    of a numpy record array, a fifth of DataFrame.from_records); int columns are cast back, which is
    exact below 2**53 (checked; larger ones go the slow way)."""
    try:
        flat = np.fromiter(chain.from_iterable(rows), dtype="float64", count=len(rows) * len(kinds))
    except (TypeError, ValueError):  # a cell that is not a number (None: NaN), or a short row: as before
        frame = pd.DataFrame.from_records(list(rows), columns=range(len(kinds))).astype(dict(enumerate(kinds)))
        return [frame[index].to_numpy() for index in range(len(kinds))]
    table = flat.reshape(len(rows), len(kinds))
    columns = []
    for index, kind in enumerate(kinds):
        column = table[:, index]
        if kind == "int64":
            if len(column) and np.abs(column).max() >= 2.0**53:
                column = np.array([row[index] for row in rows], dtype="int64")
            else:
                column = column.astype("int64")
        columns.append(column)
    return columns


def numeric_frame(rows: Sequence[tuple[float, ...]], columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    """DataFrame.from_records(rows, columns).astype(dtypes) for int64 and float64 columns (runs leave
    ~70,000 replica rows), through numeric_columns."""
    if not rows:
        return pd.DataFrame.from_records(list(rows), columns=columns).astype(dtypes)
    values = numeric_columns(rows, [dtypes[c] for c in columns])
    return pd.DataFrame(dict(zip(columns, values, strict=True)))


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    ttft_slo: float | None
    tpot_slo: float | None


def requests_frame(requests: Sequence[Request], services: Sequence[ServiceInfo]) -> pd.DataFrame:
    """One row per request. Column by column (numpy arithmetic on float64 arrays gives the same values
    as Python floats, None becoming NaN): a Python loop per request took most of this frame's time."""
    if not requests:
        return pd.DataFrame.from_records([], columns=REQUEST_COLUMNS).astype(_dtypes(REQUEST_COLUMNS))

    def floats(values: list[float | None]) -> np.ndarray:
        return np.array(values, dtype="float64")

    def ints(values: list[int]) -> np.ndarray:
        return np.array(values, dtype="int64")

    arrival = floats([r.arrival for r in requests])
    admitted = floats([r.admitted for r in requests])
    first = floats([r.first_token for r in requests])
    end = floats([r.end for r in requests])
    output = ints([r.output_tokens for r in requests])
    service = ints([r.service for r in requests])
    states = [r.state for r in requests]
    ttft, e2e = first - arrival, end - arrival
    with np.errstate(divide="ignore", invalid="ignore"):  # the requests with one output token have no TPOT
        tpot = np.where(output > 1, (end - first) / (output - 1), np.nan)
    completed = np.array([state is RequestState.COMPLETED for state in states])
    slo = np.full(len(requests), np.nan)  # also for services without an SLO: they are left out of attainment
    for index, info in enumerate(services):
        if info.ttft_slo is None and info.tpot_slo is None:
            continue
        met = np.ones(len(requests), dtype=bool)
        if info.ttft_slo is not None:
            met &= ttft <= info.ttft_slo
        if info.tpot_slo is not None:
            met &= (output <= 1) | (tpot <= info.tpot_slo)
        chosen = completed & (service == index)
        slo[chosen] = met[chosen].astype("float64")
    ended = (RequestState.COMPLETED, RequestState.REJECTED)
    names = [info.name for info in services]
    columns = [
        ints([r.id for r in requests]), np.array([names[i] for i in service.tolist()], dtype=object), arrival,
        ints([r.replica for r in requests]), admitted, first, end, admitted - arrival, ttft, tpot, e2e,
        ints([r.prompt_tokens for r in requests]), output, ints([r.preemptions for r in requests]),
        np.array([state.value if state in ended else "unfinished" for state in states], dtype=object),
        np.array([r.reason for r in requests], dtype=object), slo,
    ]
    return pd.DataFrame(dict(zip(REQUEST_COLUMNS, columns, strict=True))).astype(_dtypes(REQUEST_COLUMNS))


def replica_timeseries_frame(rows: Sequence[tuple[float, int, int, int, int, float]]) -> pd.DataFrame:
    return numeric_frame(rows, REPLICA_TS_COLUMNS, _dtypes(REPLICA_TS_COLUMNS))


def _ordered_rows(timeseries: pd.DataFrame, ends: dict[int, float]) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows by replica and time, and how long each holds: until the replica's next row, the last until its end."""
    ordered = timeseries.sort_values(["replica_id", "time_s"], kind="stable")
    ids = ordered["replica_id"].to_numpy()
    times = ordered["time_s"].to_numpy(dtype=float)
    following = np.append(times[1:], np.nan)
    last = np.append(ids[1:] != ids[:-1], True)
    following[last] = [ends.get(int(i), t) for i, t in zip(ids[last], times[last], strict=True)]
    return ordered, np.maximum(following - times, 0.0)


def _per_replica(ids: np.ndarray, values: np.ndarray) -> dict[int, float]:
    totals = pd.Series(values).groupby(ids).sum()
    return {int(i): float(v) for i, v in zip(totals.index.to_numpy(), totals.to_numpy(), strict=True)}


def replica_energy(timeseries: pd.DataFrame, ends: dict[int, float]) -> dict[int, float]:
    """Joules per replica: each row's power until the replica's next row, the last until its end."""
    if timeseries.empty:
        return {}
    ordered, held = _ordered_rows(timeseries, ends)
    return _per_replica(ordered["replica_id"].to_numpy(), ordered["power_w"].to_numpy(dtype=float) * held)


def replica_occupancy(timeseries: pd.DataFrame, ends: dict[int, float],
                      capacity: dict[int, tuple[int, int]]) -> dict[int, float]:
    """Occupied seconds per replica: each row's share of the replica's capacity in use x how long it holds.

    The share is 1 while requests wait at the replica (it is the bottleneck: its batch or KV cache is
    full, or its prefill budget or a static batch holds them back), else the larger of batch / max_batch
    and KV used / KV capacity. `capacity`: replica id -> (max_batch, KV capacity in tokens). A replica
    that serves a trickle of requests, however steadily, reads near 0 although it iterates nearly all the
    time (busy_s). KV use is the value sampled at the row's event; it grows by one token per decoding
    request per iteration until the next, so the KV share is a lower bound between events.
    """
    if timeseries.empty:
        return {}
    ordered, held = _ordered_rows(timeseries, ends)
    ids = ordered["replica_id"].to_numpy()
    max_batch = np.array([capacity[int(i)][0] for i in ids], dtype=float)
    kv_capacity = np.array([capacity[int(i)][1] for i in ids], dtype=float)
    share = np.maximum(ordered["batch"].to_numpy(dtype=float) / max_batch,
                       ordered["kv_used_tokens"].to_numpy(dtype=float) / kv_capacity)
    share[ordered["waiting"].to_numpy() > 0] = 1.0
    return _per_replica(ids, share * held)


def replicas_frame(replicas: Sequence[ReplicaRecord], timeseries: pd.DataFrame, end_time: float) -> pd.DataFrame:
    """One row per replica; `timeseries` is replica_timeseries_frame of the run's replica rows."""
    ends = {r.id: r.stopped if r.stopped is not None else end_time for r in replicas}
    energy = replica_energy(timeseries, ends)
    capacity = {r.id: (r.max_batch, r.kv_capacity) for r in replicas}
    occupied = replica_occupancy(timeseries, ends, capacity)
    records = []
    for r in replicas:
        busy = r.busy_time + (end_time - r.busy_since if r.busy_since is not None else 0.0)
        records.append((
            r.id, r.service_name, r.accelerator, r.tensor_parallel, r.node_name, r.requested, _nan(r.ready),
            _nan(r.stopped), r.kv_capacity, r.completed, r.output_tokens, busy, occupied.get(r.id, 0.0),
            energy.get(r.id, 0.0),
        ))
    frame = pd.DataFrame.from_records(records, columns=REPLICA_COLUMNS)
    return frame.astype(_dtypes(REPLICA_COLUMNS))


def _nan(value: float | None) -> float:
    return np.nan if value is None else value
