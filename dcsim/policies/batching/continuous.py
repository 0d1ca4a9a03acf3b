"""Continuous batching with prefill priority, as vLLM schedules by default.

At every iteration boundary, waiting requests that fit the batch and the KV cache are admitted and
prefilled together in one prefill-only iteration (running requests pause for it); otherwise the
batch decodes. Requests join and leave the batch at iteration granularity. One prefill iteration
takes at most `max_prefill_tokens` prompt tokens (vLLM's max_num_batched_tokens; 4,096 by default, a
Llama-2 context), so a burst of arrivals is prefilled over several iterations rather than in one
long stall; None removes the cap.
"""

from __future__ import annotations

from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import DECODE_ONLY, Iteration, ReplicaSchedulerView, admit_fifo, prefill_left


@register("replica_scheduler", "continuous_batching")
class ContinuousBatching(PolicyBase):
    """vLLM-like: admit whatever fits and prefill it first; otherwise decode the whole batch."""

    def __init__(self, *, max_prefill_tokens: int | None = 4096) -> None:
        if max_prefill_tokens is not None and max_prefill_tokens < 1:
            raise ValueError(f"max_prefill_tokens must be >= 1, got {max_prefill_tokens}")
        self.max_prefill_tokens = max_prefill_tokens

    def plan(self, view: ReplicaSchedulerView) -> Iteration:
        prefilling = view.prefilling
        if not prefilling and not view.waiting:  # the usual plan at a decode boundary: nothing to admit
            return DECODE_ONLY
        admitted = admit_fifo(view)
        if admitted and self.max_prefill_tokens is not None:  # cap one prefill's tokens (the first always goes)
            total = 0
            lefts: list[int] = []  # prompt tokens each kept one prefills (asked once: a cache lookup)
            for request in admitted:
                left = prefill_left(view, request)
                total += left
                if lefts and total > self.max_prefill_tokens:
                    break
                lefts.append(left)
            admitted = admitted[:len(lefts)]
        else:
            lefts = [prefill_left(view, r) for r in admitted]
        if not admitted and not prefilling:
            return DECODE_ONLY
        pending = [(r.id, r.need - r.prefilled) for r in prefilling]
        chunks = tuple(pending + [(r.id, left) for r, left in zip(admitted, lefts, strict=True)])
        return Iteration(admit=tuple(r.id for r in admitted), chunks=chunks, decode=False)
