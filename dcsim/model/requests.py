"""Inference requests: passive records the serving engine updates and policies read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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

    @property
    def need(self) -> int:
        """Tokens the next prefill must process (and the KV cache reserve) when admitted."""
        return self.prompt_tokens + self.generated
