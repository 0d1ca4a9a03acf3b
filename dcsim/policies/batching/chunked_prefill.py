"""Chunked prefill with a per-iteration token budget, as Sarathi-Serve schedules.

Every iteration decodes the whole batch (one token per decoding request) and spends the rest of
the token budget on prompt chunks: first of requests already prefilling, then of newly admitted
ones. Long prompts no longer stall decoding, at the cost of a longer time to first token.
"""

from __future__ import annotations

from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import Iteration, ReplicaSchedulerView, admit_fifo, prefill_left


@register("replica_scheduler", "chunked_prefill")
class ChunkedPrefill(PolicyBase):
    """Sarathi-like: decode every iteration and fill the token budget with prompt chunks."""

    def __init__(self, *, token_budget: int = 512) -> None:
        if token_budget < 1:
            raise ValueError(f"token_budget must be >= 1, got {token_budget}")
        self.token_budget = token_budget

    def plan(self, view: ReplicaSchedulerView) -> Iteration:
        budget = self.token_budget - view.decoding
        chunks: list[tuple[int, int]] = []
        for request in view.prefilling:
            if budget <= 0:
                break
            take = min(request.need - request.prefilled, budget)
            chunks.append((request.id, take))
            budget -= take
        admit: list[int] = []
        if budget > 0:
            for request in admit_fifo(view):
                if budget <= 0:
                    break
                take = min(prefill_left(view, request), budget)
                admit.append(request.id)
                chunks.append((request.id, take))
                budget -= take
        return Iteration(admit=tuple(admit), chunks=tuple(chunks), decode=True)
