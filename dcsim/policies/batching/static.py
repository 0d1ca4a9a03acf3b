"""Static (request-level) batching: a batch is formed only when the previous one has finished.

Requests that finish early leave their slot empty until the whole batch is done, which is the
inefficiency continuous batching removes. Finished requests stop costing decode time (no padding).
"""

from __future__ import annotations

from dcsim.policies.base import PolicyBase
from dcsim.policies.registry import register
from dcsim.policies.serving_base import Iteration, ReplicaSchedulerView, admit_fifo, prefill_left


@register("replica_scheduler", "static_batching")
class StaticBatching(PolicyBase):
    """Request-level batching: admit up to max_batch when the replica is empty, run to completion."""

    def __init__(self) -> None:
        pass

    def plan(self, view: ReplicaSchedulerView) -> Iteration:
        if view.prefilling:
            return Iteration(chunks=tuple((r.id, r.need - r.prefilled) for r in view.prefilling), decode=False)
        if view.decoding:
            return Iteration(decode=True)
        admitted = admit_fifo(view)
        return Iteration(admit=tuple(r.id for r in admitted),
                         chunks=tuple((r.id, prefill_left(view, r)) for r in admitted), decode=False)
