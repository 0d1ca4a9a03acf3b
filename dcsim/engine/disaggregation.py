"""Disaggregated prefill and decode (Splitwise, DistServe): two pools of one service, joined by KV transfers.

A disaggregated service runs as two ServiceRuntimes on the one serving engine: its prefill pool takes
the arrivals (index = the service's index, so request records keep their service), and a
DecodePoolRuntime, appended after the scenario's services, owns the decode replicas. Both pools use
the same replica engine (replica.py); a replica's `shape.pool` only decides what happens when a prompt
is done:

1. the prefill replica produces the first token (TTFT ends here: the token can stream to the user
   while the KV cache moves) and frees the request's KV tokens;
2. the decode pool's balancer picks a decode replica (any registered balancer; it sees the decode
   replicas' views) and the request's KV cache, prompt tokens x KV bytes per token, moves there
   (engine/kv_transfer.py: over the fabric when there is a network, else over the node's NIC);
3. at the decode replica's next iteration boundary the request joins decoding with its context
   reserved (serving.py `_join_prefilled`); preempted later, it is recomputed there, as vLLM does.

So the transfer time shows in the gap between the first and second token: in TPOT and end-to-end
latency, not in TTFT (docs/inference.md says why). A request with one output token ends at prefill.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import simpy

from dcsim.engine.kv_transfer import KVTransfers
from dcsim.engine.replica import Replica, ReplicaShape
from dcsim.engine.service import ServiceRuntime, choose_replica
from dcsim.model import Request
from dcsim.policies.serving_base import Autoscaler, Balancer, ReplicaScheduler

HandOff = Callable[[Replica, Request], None]


class DecodePoolRuntime(ServiceRuntime):
    """The decode pool of a disaggregated service: it routes prefilled requests, never arrivals."""

    def __init__(self, env: simpy.Environment, index: int, name: str, shapes: Sequence[ReplicaShape],
                 initial: Sequence[int], limits: Sequence[int], min_replicas: int, scheduler: ReplicaScheduler,
                 balancer: Balancer, autoscaler: Autoscaler, rng: np.random.Generator, *, feeder: ServiceRuntime,
                 transfers: KVTransfers, kv_bytes_per_token: float, source: str = "") -> None:
        super().__init__(env, index, name, shapes, initial, limits, min_replicas, scheduler, balancer, autoscaler,
                         rng, 0, source=source)
        self.feeder = feeder
        self.transfers = transfers
        self.kv_bytes_per_token = kv_bytes_per_token
        self._sources: dict[int, Replica] = {}  # request id -> the prefill replica holding its KV cache
        feeder.max_kv = min(feeder.max_kv, self.max_kv)  # arrivals no decode replica can hold are rejected

    def _has_work(self) -> bool:
        return self.feeder.arrivals_left > 0 or self.feeder.outstanding > 0 or super()._has_work()

    def receive(self, source: Replica, request: Request) -> None:
        """A request prefilled on `source` (its first token out): send its KV cache to a decode replica."""
        self.outstanding += 1
        self._sources[request.id] = source
        if not self.routable or not self._send(request):
            self.pending.append(request)
            if not self.routable:
                self.engine.demand_appeared()

    def _route_pending(self) -> None:
        held: deque[Request] = deque()
        touched: dict[int, Replica] = {}
        while self.pending:
            request = self.pending.popleft()
            if not self.routable:
                held.append(request)
            elif request.id in self._sources:  # prefilled: its KV cache moves to the chosen replica
                if not self._send(request):
                    held.append(request)
            elif (replica := self._choose(request)) is not None:  # lost with a decode replica: recomputed
                replica.waiting.append(request)
                touched[replica.id] = replica
            else:
                held.append(request)
        self.pending = held
        for replica in touched.values():
            self.engine.wake(replica)

    def _send(self, request: Request) -> bool:
        target = self._choose(request)
        if target is None:
            return False
        source = self._sources.pop(request.id)
        size = self.kv_bytes_per_token * (request.prompt_tokens + request.generated - 1)
        self.transfers.send(request.id, (source.id, source.node_id, source.node_name),
                            (target.id, target.node_id, target.node_name), size,
                            partial(self._arrived, request, target))
        return True

    def _choose(self, request: Request) -> Replica | None:
        """The balancer's decode replica among the ready ones whose KV cache can hold the request."""
        return choose_replica(self.balancer, request, self.view, self._smallest_kv, "decode balancer")

    def _arrived(self, request: Request, target: Replica) -> None:
        if target.stopped is not None:  # lost to a failure while its KV cache moved: recomputed elsewhere
            target.outstanding = max(0, target.outstanding - 1)
            self.outstanding -= 1
            replica = self.accept(request)
            if replica is not None:
                self.engine.wake(replica)
            return
        target.prefilled_in.append(request)
        self.engine.wake(target)


class Disaggregation:
    """Routes each prefilled request from its service's prefill pool to that service's decode pool."""

    def __init__(self, decoders: dict[int, DecodePoolRuntime]) -> None:
        self.decoders = decoders  # prefill runtime index -> decode pool

    def __call__(self, replica: Replica, request: Request) -> None:
        self.decoders[replica.service].receive(replica, request)

    def pools(self) -> dict[str, Any]:
        """Service name -> (prefill runtime, decode runtime), for the summary."""
        return {decoder.name: (decoder.feeder, decoder) for decoder in self.decoders.values()}
