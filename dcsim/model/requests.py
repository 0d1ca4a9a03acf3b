"""Inference requests: passive records the serving engine updates and policies read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class RequestState(StrEnum):
    PENDING = "pending"  # arrived, not yet admitted into a batch (or preempted and waiting again)
    RUNNING = "running"  # in a replica's batch: prefilling or decoding
    COMPLETED = "completed"
    REJECTED = "rejected"


@dataclass(slots=True, eq=False)
class Request:
    """One LLM request: `prompt_tokens` in, `output_tokens` out (the first from the prefill).

    KV-cache tokens held while running = prompt + generated - 1 (the newest token is not stored yet);
    a preempted request is recomputed: its next prefill covers prompt + generated tokens.
    """

    id: int
    service: int  # index into the scenario's services
    arrival: float
    prompt_tokens: int
    output_tokens: int
    key: int = 0  # session / prefix key for affinity balancing
    state: RequestState = RequestState.PENDING
    replica: int = -1
    admitted: float | None = None  # first admission into a batch (queue delay ends here)
    first_token: float | None = None
    end: float | None = None
    preemptions: int = 0
    retries: int = 0  # routed again after its replica was lost to a failure
    reason: str = ""
    generated: int = 0
    prefilled: int = 0  # tokens of the current (re)prefill already processed
    # decode bookkeeping of the replica (iteration counter at which it joined / will finish)
    seq: int = 0
    join_iteration: int = 0
    finish_iteration: int = 0
    # paged KV and prefix caching (engine/kv_blocks.py); untouched when a service has no paged_kv
    prefix: Any = None  # numpy int64 ids of the prompt's prefix blocks (trace hashes), or None
    prefix_block: int = 0  # tokens per prefix id
    prefill_requested: int = 0  # tokens its prefills had to cover (prompt, + generated after a recompute)
    cached_tokens: int = 0  # of those, found in the prefix cache (or swapped back in) instead of computed
    computed_tokens: int = 0  # of those, computed by prefill chunks
    first_cached: int = 0  # prompt tokens found in the prefix cache at its first admission
    swaps: int = 0  # preemptions that copied its KV to host memory
    swap_time: float = 0.0  # seconds of its KV copies out and back in
    kv_refs: Any = None  # engine bookkeeping: prefix-cache entries it holds
    kv_keys: Any = None  # engine bookkeeping: its prefix keys as a list while it is in flight
    kv_memo: Any = None  # engine bookkeeping: its last prefix-cache lookup
    kv_shared: int = 0  # engine bookkeeping: KV blocks of those entries
    swapped: bool = False  # its KV waits in host memory

    @property
    def need(self) -> int:
        """Tokens the next prefill must process (and the KV cache reserve) when admitted."""
        return self.prompt_tokens + self.generated
