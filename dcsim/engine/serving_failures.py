"""A serving replica lost to a failure (engine/failures.py): its KV cache goes with it.

Its requests go back to their service to be routed again (the tokens already streamed stay; the
prompt and those tokens are prefilled again elsewhere), each counting a retry; a request lost more
than `retry_limit` times is dropped with the reason. The service starts a replacement replica (a cold
start, as the autoscaler would) as soon as one fits, else when capacity comes back.
"""

from __future__ import annotations

import math
from typing import Protocol

from dcsim.engine.replica import Replica
from dcsim.engine.service import ServiceRuntime
from dcsim.model import Request, RequestState


class LossHost(Protocol):
    services: list[ServiceRuntime]
    finished: int

    @property
    def now(self) -> float: ...
    def set_idle(self, replica: Replica) -> None: ...
    def wake(self, replica: Replica) -> None: ...


class ReplicaLosses:
    """Counts and the pending replacements of lost replicas."""

    def __init__(self, retry_limit: int) -> None:
        self.retry_limit = retry_limit
        self.replicas_lost = 0
        self.retries = 0
        self.dropped = 0
        self.replacements: list[tuple[ServiceRuntime, int]] = []  # (service, shape group) still to start

    def lose(self, host: LossHost, replica: Replica, reason: str) -> None:
        if replica.stopped is not None:
            return
        service = host.services[replica.service]
        now = host.now
        requests = self._evict(replica, now)
        host.set_idle(replica)
        if replica in service.routable:
            service.routable.remove(replica)
            service.view.replicas = tuple(service.routable)
        was_draining = replica.draining
        service.stop_replica(replica)
        self.replicas_lost += 1
        touched: dict[int, Replica] = {}
        for request in requests:
            service.outstanding -= 1
            request.retries += 1
            if request.retries > self.retry_limit:
                request.state = RequestState.REJECTED
                request.reason = f"lost with its replica {request.retries} times ({reason})"
                request.end = now
                self.dropped += 1
                host.finished += 1
                continue
            self.retries += 1
            target = service.accept(request)
            if target is not None:
                touched[target.id] = target
        for target in touched.values():
            host.wake(target)
        if not was_draining:
            self.replacements.append((service, replica.shape.group))
            self.replace()

    @staticmethod
    def _evict(replica: Replica, now: float) -> list[Request]:
        """Empty the replica; return its requests ready to run again (tokens streamed so far kept)."""
        done = 0
        if replica.segment_k > 0 and replica.members:  # iterations of the current stretch finished by now
            elapsed = now - replica.segment_start
            done = replica.iterations_by(elapsed)
            if done > 0 and replica.stretch_duration(done) > elapsed:
                done -= 1
        requests: list[Request] = list(replica.waiting) + list(replica.prefilled_in) + list(replica.prefilling)
        for request in replica.members.values():
            request.generated = min(request.output_tokens - 1,
                                    request.generated + replica.iteration + done - request.join_iteration)
            requests.append(request)
        for request in requests:
            request.state = RequestState.PENDING
            request.prefilled = 0
            request.replica = -1
            request.swapped = False  # paged KV (engine/kv_blocks.py): its KV and cache pins were on that replica
            request.kv_refs = request.kv_memo = None
            request.kv_shared = 0
        replica.waiting.clear()
        replica.prefilled_in.clear()
        replica.prefilling.clear()
        replica.members.clear()
        replica.reserved_prefill = replica.context_offset = 0
        replica.outstanding = replica.outstanding_tokens = 0
        replica.segment_k = 0
        replica.pending_chunks = ()
        replica.pending_decode = False
        replica.version += 1  # its planned boundary is void
        replica.boundary_at = math.inf
        return requests

    def replace(self) -> None:
        """Start the replacements that fit now (called again when capacity comes back)."""
        left: list[tuple[ServiceRuntime, int]] = []
        for service, group in self.replacements:
            if len(service.active()) >= service.max_replicas:
                continue  # the autoscaler has made up for it already
            if service.start_replacement(group) is None:
                left.append((service, group))
        self.replacements = left
