"""Serving policy families as Protocols: replica scheduler, load balancer, autoscaler.

As for training, a policy reads a view of engine state and returns a decision as data; the engine
checks the decision (the replica is offered, the request is waiting, the batch and KV cache fit)
and raises PolicyError naming the policy otherwise.

Fast-forward contract of replica schedulers: the engine asks `plan` after every change of a
replica's state (an arrival, a prefill iteration, a completion, a preemption), not at every decode
iteration. Between such changes only context lengths grow, and a scheduler must keep returning the
same pure-decode plan; that is what lets the engine advance decode iterations in closed form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np


class RequestView(Protocol):
    """What a policy may read of a request."""

    @property
    def id(self) -> int: ...
    @property
    def arrival(self) -> float: ...
    @property
    def prompt_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def key(self) -> int:
        """Session or prefix key (any integer; requests of one conversation share it)."""
        ...
    @property
    def generated(self) -> int: ...
    @property
    def prefilled(self) -> int:
        """Tokens of the current prefill already processed (chunked prefill)."""
        ...
    @property
    def need(self) -> int:
        """Tokens its prefill processes and the KV cache reserves on admission (prompt + generated)."""
        ...


# --- replica scheduler ---------------------------------------------------------------------------


class ReplicaSchedulerView(Protocol):
    """One replica at an iteration boundary."""

    @property
    def now(self) -> float: ...
    @property
    def waiting(self) -> Sequence[RequestView]:
        """Requests routed here and not in the batch, in queue order (preempted ones first)."""
        ...
    @property
    def prefilling(self) -> Sequence[RequestView]:
        """Admitted requests whose prefill is not finished, in admission order."""
        ...
    @property
    def decoding(self) -> int:
        """Requests in the batch that generate one token per decode iteration."""
        ...
    @property
    def max_batch(self) -> int: ...
    @property
    def kv_capacity(self) -> int:
        """KV-cache capacity of the replica, in tokens."""
        ...
    @property
    def kv_free(self) -> int:
        """Tokens not reserved by the batch; each decode iteration needs one per decoding request."""
        ...
    def kv_cost(self, request: RequestView) -> int:
        """KV tokens admitting `request` takes from kv_free: its `need`, or with paged KV whole blocks
        less those its cached prefix already shares."""
        ...
    def prefix_hit(self, request: RequestView) -> int:
        """Tokens of its next prefill already in this replica's KV cache (0 without prefix caching):
        its first chunk covers at most need - prefix_hit tokens."""
        ...


@dataclass(frozen=True, slots=True)
class Iteration:
    """Replica scheduler decision for the next iteration.

    admit: waiting request ids to move into the batch, in order (each reserves `need` KV tokens);
    chunks: (request id, prompt tokens to prefill this iteration) for admitted or prefilling requests;
    decode: whether the decoding requests generate a token this iteration.
    Nothing to do (no chunks, and no decode or no decoding requests) leaves the replica idle until
    the next arrival."""

    admit: tuple[int, ...] = ()
    chunks: tuple[tuple[int, int], ...] = ()
    decode: bool = True


DECODE_ONLY = Iteration()  # the usual plan, shared (Iteration is immutable)


@runtime_checkable
class ReplicaScheduler(Protocol):
    family: ClassVar[str]
    name: ClassVar[str]

    def get_params(self) -> dict[str, Any]: ...
    def plan(self, view: ReplicaSchedulerView) -> Iteration: ...


def admit_fifo(view: ReplicaSchedulerView, limit: int | None = None) -> list[RequestView]:
    """Waiting requests, from the head of the queue, that fit the batch and the KV cache.

    Each admission leaves room for one more decode iteration of the whole batch, so admitting never
    forces an immediate preemption. Stops at the first request that does not fit (no overtaking)."""
    waiting = view.waiting
    if not waiting:  # the usual case at a boundary: nobody to admit (kv_free is not free to compute)
        return []
    room = view.max_batch - view.decoding - len(view.prefilling)
    if limit is not None:
        room = min(room, limit)
    if room <= 0:  # a full batch: nobody fits whatever the KV cache holds
        return []
    free = view.kv_free - view.decoding - len(view.prefilling)
    chosen: list[RequestView] = []
    for request in waiting:
        if len(chosen) >= room:
            break
        cost = view.kv_cost(request)
        if cost + 1 > free:
            break
        chosen.append(request)
        free -= cost + 1
    return chosen


def prefill_left(view: ReplicaSchedulerView, request: RequestView) -> int:
    """Prompt tokens a request being admitted still has to prefill (its cached prefix is not computed)."""
    return request.need - view.prefix_hit(request)


# --- load balancer -------------------------------------------------------------------------------


class ReplicaView(Protocol):
    """What a balancer may read of a replica."""

    @property
    def id(self) -> int: ...
    @property
    def accelerator(self) -> str: ...
    @property
    def tensor_parallel(self) -> int: ...
    @property
    def outstanding(self) -> int:
        """Requests routed to it and not finished (waiting or in the batch)."""
        ...
    @property
    def outstanding_tokens(self) -> int:
        """Prompt + output tokens of its unfinished requests."""
        ...
    def prefix_hit(self, request: RequestView) -> int:
        """Tokens of the request's prompt found in the replica's prefix cache (0 without prefix caching);
        read-only, for cache-aware routing."""
        ...
    @property
    def speed(self) -> float:
        """Decode throughput of the whole replica (all its accelerators), in output tokens/s at batch 32
        with 1,024 context tokens each, from the calibration; always > 0. Compare replicas by ratio."""
        ...


class BalancerView(Protocol):
    @property
    def now(self) -> float: ...
    @property
    def replicas(self) -> Sequence[ReplicaView]:
        """Replicas that may take this request (ready, not draining, KV cache large enough), in
        ascending id order; never empty."""
        ...
    @property
    def rng(self) -> np.random.Generator:
        """The balancer's own random stream (depends only on the seed)."""
        ...


@runtime_checkable
class Balancer(Protocol):
    family: ClassVar[str]
    name: ClassVar[str]

    def get_params(self) -> dict[str, Any]: ...
    def choose(self, request: RequestView, view: BalancerView) -> int:
        """The id of one of `view.replicas` to send the request to."""
        ...


# --- autoscaler ----------------------------------------------------------------------------------


class AutoscalerView(Protocol):
    """One service at a scaling decision."""

    @property
    def now(self) -> float: ...
    @property
    def replicas(self) -> int:
        """Replicas serving or starting (loading weights), not draining."""
        ...
    @property
    def ready(self) -> int:
        """Of those, the replicas already serving (busy_fraction is measured over these)."""
        ...
    @property
    def min_replicas(self) -> int: ...
    @property
    def max_replicas(self) -> int: ...
    @property
    def waiting(self) -> int:
        """Requests routed but not admitted into a batch, plus requests with no replica to go to."""
        ...
    @property
    def outstanding(self) -> int:
        """Requests arrived and not finished."""
        ...
    @property
    def busy_fraction(self) -> float:
        """Time-weighted share of the ready replicas' time spent iterating since the last decision."""
        ...


@runtime_checkable
class Autoscaler(Protocol):
    family: ClassVar[str]
    name: ClassVar[str]

    @property
    def interval(self) -> float | None:
        """Seconds between decisions; None: never asked (a fixed count)."""
        ...

    def get_params(self) -> dict[str, Any]: ...
    def desired(self, view: AutoscalerView) -> int:
        """How many replicas the service should run; the engine clamps to [min_replicas, max_replicas]."""
        ...
