"""Scenario schema of a service's paged KV cache: blocks, watermark, preemption, prefix caching.

Absent (`paged_kv:` not given), a replica counts its KV cache in tokens and recomputes preempted
requests, exactly as before this option existed. Given, the cache is counted in blocks of
`block_size` tokens (vLLM's default 16), admission keeps `watermark` of the blocks free for running
requests to grow into, a preempted request is recomputed or swapped to host memory over `host_link`
(within `swap_space` when given),
and with `prefix_caching` finished and running requests leave their prompt blocks behind for later
requests with the same prefix (least recently used blocks are evicted first). `shared_store` adds a
store of prefix blocks that all the service's replicas write and read (Mooncake's; engine/kv_store.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from dcsim.scenario.base import Strict
from dcsim.scenario.units_types import Bandwidth, Bytes


class SharedStore(Strict):
    capacity: Bytes = Field(description="bytes of KV the store holds for the whole service (e.g. '2 TB')")
    bandwidth: Bandwidth = Field(25e9, description="bytes/s at which a replica copies entries in from the store; "
                                                   "25 GB/s is a 200 Gb/s NIC")


class PagedKV(Strict):
    block_size: int = Field(16, ge=1, le=4096, description="tokens per KV block")
    watermark: float = Field(0.01, ge=0, le=0.5,
                             description="share of KV blocks admission leaves free for running requests to grow")
    preemption: Literal["recompute", "swap"] = Field(
        "recompute", description="a preempted request's KV is dropped and recomputed, or copied to host memory "
                                 "over host_link and back")
    host_link: Bandwidth = Field(25e9, description="host <-> accelerator copy bandwidth per replica (swap and the "
                                                   "host cache tier); 25 GB/s is PCIe 4.0 x16 in practice")
    prefix_caching: bool = Field(True, description="keep KV blocks of earlier requests for later ones with the same "
                                                   "prefix (prefix hashes from the trace, else the session key)")
    swap_space: Bytes | None = Field(None, description="host memory per replica for swapped requests' KV (vLLM's "
                                                       "--swap-space is per GPU: multiply it by tensor_parallel); "
                                                       "a preemption whose KV does not fit is recomputed instead; "
                                                       "needs preemption: swap; default: unbounded")
    host_cache: Bytes | None = Field(None, description="second prefix-cache tier in host memory per replica; blocks "
                                                       "evicted from the accelerator go there; default: none")
    shared_store: SharedStore | None = Field(None, description="prefix blocks shared by all the service's replicas "
                                                               "(written when a prefill ends); default: none")


    @field_validator("swap_space")
    @classmethod
    def _swap_space_needs_swap(cls, value: float | None, info: ValidationInfo) -> float | None:
        preemption = info.data.get("preemption", "swap")  # (absent only when preemption itself failed)
        if value is not None and preemption != "swap":
            raise ValueError(f"bounds host memory for swapped KV; needs preemption: swap, got {preemption}")
        return value

def block_size_problem(trace_block: int | None, paged: PagedKV | None) -> str | None:
    """Why the trace's prefix-hash block size cannot map onto the service's KV blocks (None if it can)."""
    if trace_block is None or paged is None or trace_block % paged.block_size == 0:
        return None
    return (f"requests.block_size {trace_block} (tokens per prefix hash) must be a multiple of "
            f"paged_kv.block_size {paged.block_size}")
