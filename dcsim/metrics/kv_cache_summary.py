"""Paged-KV and prefix-cache figures of services that set `paged_kv` (absent otherwise, so the
outputs of other runs are unchanged).

Frames:
- request_kv: request_id, service, prefill_requested (tokens its prefills had to cover: the prompt,
  plus generated tokens after a recompute, plus 1 per swap-in), prefill_cached (of those, found in
  the prefix cache), prefill_computed (of those, run through prefill chunks), first_cached (prompt
  tokens cached at its first admission), swaps, swap_s (seconds of its KV copies out and in).
  prefill_cached + prefill_computed = prefill_requested for every finished prefill.
- replica_kv: time_s, replica_id, used_blocks (held by running requests, shared blocks once),
  cached_blocks (prefix-cache blocks nobody holds: evictable), capacity_blocks, block_size; each row
  holds until the replica's next one. used + cached <= capacity at every row.

Summary (`inference.kv_cache`, and per service): token_hit_rate = cached / requested prefill tokens,
request_hit_rate = share of admitted requests that found part of their prompt cached at first
admission, prefill tokens requested / cached / computed, swaps out and in and their seconds,
evictions, blocks read back from the host tier, peak occupancy; with a shared store
(paged_kv.shared_store), also store_blocks_read (blocks replicas copied in from it), store_entries_written,
store_evictions and store_peak_blocks (of the stores of the replicas counted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from dcsim.metrics.serving_frames import numeric_columns
from dcsim.model import Request

REQUEST_KV_COLUMNS = ["request_id", "service", "prefill_requested", "prefill_cached", "prefill_computed",
                      "first_cached", "swaps", "swap_s"]
REPLICA_KV_COLUMNS = ["time_s", "replica_id", "used_blocks", "cached_blocks", "capacity_blocks", "block_size"]


class PagedReplicaRecord(Protocol):
    """What is read of a paged replica (engine/kv_blocks.py)."""

    id: int
    service_name: str
    blocks: int
    block: int
    swap_outs: int
    swap_ins: int
    swap_seconds: float
    host_hit_blocks: int
    store_hit_blocks: int
    swap_capacity_blocks: int | None
    swap_refused: int
    swap_blocks_peak: int
    samples: list[tuple[float, int, int]]
    cache: Any  # engine/prefix_cache.PrefixCache or None; its `store` is the service's shared store

    @property
    def evictions(self) -> int: ...


def request_kv_frame(requests: Iterable[Request], names: Sequence[str], paged: set[int]) -> pd.DataFrame:
    dtypes = {c: "str" if c == "service" else "float64" if c == "swap_s" else "int64" for c in REQUEST_KV_COLUMNS}
    chosen = [r for r in requests if r.service in paged]
    if not chosen:
        return pd.DataFrame.from_records([], columns=REQUEST_KV_COLUMNS).astype(dtypes)
    columns = [[r.id for r in chosen], np.array([names[r.service] for r in chosen], dtype=object),
               [r.prefill_requested for r in chosen], [r.cached_tokens for r in chosen],
               [r.computed_tokens for r in chosen], [r.first_cached for r in chosen], [r.swaps for r in chosen],
               [r.swap_time for r in chosen]]  # column by column: from_records boxes every cell first
    return pd.DataFrame({name: np.array(values, dtype=object if dtypes[name] == "str" else dtypes[name])
                         for name, values in zip(REQUEST_KV_COLUMNS, columns, strict=True)}).astype(dtypes)


def replica_kv_frame(replicas: Sequence[PagedReplicaRecord]) -> pd.DataFrame:
    """One row per sample, replica by replica (each replica's samples as numeric_columns)."""
    sampled = [r for r in replicas if r.samples]
    if not sampled:
        frame = pd.DataFrame.from_records([], columns=REPLICA_KV_COLUMNS)
        return frame.astype({c: "float64" if c == "time_s" else "int64" for c in REPLICA_KV_COLUMNS})
    arrays = [numeric_columns(r.samples, ("float64", "int64", "int64")) for r in sampled]  # time, used, cached
    counts = [len(r.samples) for r in sampled]

    def each(values: list[int]) -> np.ndarray:
        return np.repeat(np.array(values, dtype="int64"), counts)

    columns = [np.concatenate([a[0] for a in arrays]), each([r.id for r in sampled]),
               np.concatenate([a[1] for a in arrays]), np.concatenate([a[2] for a in arrays]),
               each([r.blocks for r in sampled]), each([r.block for r in sampled])]
    return pd.DataFrame(dict(zip(REPLICA_KV_COLUMNS, columns, strict=True)))


def kv_cache_section(requests: pd.DataFrame, replicas: Sequence[PagedReplicaRecord],
                     occupancy: pd.DataFrame) -> dict[str, Any]:
    requested = int(requests["prefill_requested"].sum())
    cached = int(requests["prefill_cached"].sum())
    admitted = requests[requests["prefill_requested"] > 0]
    peak = 0.0
    if len(occupancy):
        share = (occupancy["used_blocks"] + occupancy["cached_blocks"]) / occupancy["capacity_blocks"]
        peak = float(share.max())
    return {
        "token_hit_rate": cached / requested if requested else None,
        "request_hit_rate": float((admitted["first_cached"] > 0).mean()) if len(admitted) else None,
        "prefill_tokens_requested": requested,
        "prefill_tokens_cached": cached,
        "prefill_tokens_computed": int(requests["prefill_computed"].sum()),
        "swaps_out": sum(r.swap_outs for r in replicas),
        "swaps_in": sum(r.swap_ins for r in replicas),
        "swap_s": float(sum(r.swap_seconds for r in replicas)),
        "evictions": sum(r.evictions for r in replicas),
        "host_tier_blocks_read": sum(r.host_hit_blocks for r in replicas),
        "peak_occupancy": peak,
    } | store_section(replicas) | swap_space_section(replicas)


def store_section(replicas: Sequence[PagedReplicaRecord]) -> dict[str, Any]:
    """The shared stores' figures (empty without one, so runs without a store keep their outputs)."""
    stores = list({id(r.cache.store): r.cache.store for r in replicas
                   if r.cache is not None and r.cache.store is not None}.values())
    if not stores:
        return {}
    return {"store_blocks_read": sum(r.store_hit_blocks for r in replicas),
            "store_entries_written": sum(store.written for store in stores),
            "store_evictions": sum(store.evicted for store in stores),
            "store_peak_blocks": sum(store.peak for store in stores)}


def swap_space_section(replicas: Sequence[PagedReplicaRecord]) -> dict[str, Any]:
    """Bounded swap space (paged_kv.swap_space): preemptions it turned into recomputes, and its peak use per
    replica (empty when unbounded, so runs without the bound keep their outputs)."""
    bounded = [r for r in replicas if r.swap_capacity_blocks is not None]
    if not bounded:
        return {}
    return {"swaps_refused": sum(r.swap_refused for r in bounded),
            "swap_space_peak_blocks": max(r.swap_blocks_peak for r in bounded)}


def kv_cache_results(requests: Sequence[Request], names: Sequence[str], paged: set[int],
                     replicas: Sequence[PagedReplicaRecord]) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Frames and the summary section (totals, then `services`) of the paged services."""
    request_kv = request_kv_frame(requests, names, paged)
    replica_kv = replica_kv_frame(replicas)
    section = kv_cache_section(request_kv, replicas, replica_kv)
    section["services"] = {}
    for index in sorted(paged):
        own = [r for r in replicas if r.service_name == names[index]]
        ids = {r.id for r in own}
        section["services"][names[index]] = kv_cache_section(
            request_kv[request_kv["service"] == names[index]], own, replica_kv[replica_kv["replica_id"].isin(ids)])
    return {"request_kv": request_kv, "replica_kv": replica_kv}, section
