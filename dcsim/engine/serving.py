"""Inference services on the cluster: request arrivals, load balancing, replica iterations.

Events happen only where a replica's state changes: an arrival (the replica plans at once if idle,
or its decode stretch is cut at the next iteration boundary), the end of an explicit iteration (one
with prefill work), the end of a fast-forwarded decode stretch (the next completion, or the KV
cache filling), replica start-up and autoscaler decisions. With `fast_forward=False` every decode
iteration is its own event instead; both modes give the same request times (tests check this).
Replicas take accelerators from the same cluster as training jobs (best fit on one node).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import simpy

from dcsim.engine.disaggregation import HandOff
from dcsim.engine.levels import LevelBoard
from dcsim.engine.replica import Replica
from dcsim.engine.service import ServiceRuntime
from dcsim.engine.serving_failures import ReplicaLosses
from dcsim.engine.timers import call_after
from dcsim.errors import PolicyError
from dcsim.metrics.protocol import Recorder
from dcsim.model import Cluster, Request, RequestState


class ServingEngine:
    def __init__(self, env: simpy.Environment, cluster: Cluster, services: Sequence[ServiceRuntime],
                 requests: Sequence[Request], recorder: Recorder, levels: LevelBoard, *,
                 fast_forward: bool = True, on_capacity_change: Callable[[], None] | None = None,
                 training_waiting: Callable[[], bool] | None = None) -> None:
        self.env = env
        self.cluster = cluster
        self.services = list(services)
        self.requests = requests
        self.recorder = recorder
        self.levels = levels
        self.fast_forward = fast_forward
        self.on_capacity_change = on_capacity_change or (lambda: None)
        self.training_waiting = training_waiting or (lambda: False)
        self.replicas: list[Replica] = []
        # (tier, node id, bytes, on_done): loads weights over the storage network (engine/fabric.py)
        self.load_weights: Callable[[str, int, float, Callable[[], None]], None] | None = None
        self._next_arrival = 0
        self._seq = 0
        self.finished = 0
        self.losses: ReplicaLosses | None = None  # replicas lost to failures (engine/serving_failures.py)
        self.hand_off: HandOff | None = None  # disaggregated services: prefill pool -> decode pool
        for service in self.services:
            service.engine = self

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        for service in self.services:
            service.start_initial_replicas()
        self._schedule_next_arrival()
        for service in self.services:
            service.ensure_ticking()

    def _schedule_next_arrival(self) -> None:
        if self._next_arrival < len(self.requests):
            delay = max(0.0, self.requests[self._next_arrival].arrival - self.env.now)
            call_after(self.env, delay, self._on_arrival)

    def _on_arrival(self, _event: simpy.Event) -> None:
        now = self.env.now
        requests = self.requests
        touched: dict[int, Replica] = {}
        while self._next_arrival < len(requests) and requests[self._next_arrival].arrival <= now:
            request = requests[self._next_arrival]
            self._next_arrival += 1
            service = self.services[request.service]
            service.arrivals_left -= 1
            self.recorder.request_submitted(request)
            replica = service.accept(request)
            if replica is None:
                if request.state is RequestState.REJECTED:
                    self.finished += 1
                continue
            touched[replica.id] = replica
        for replica in touched.values():
            self.wake(replica)
        self._schedule_next_arrival()

    # --- replica iterations ---------------------------------------------------------------------
    def wake(self, replica: Replica) -> None:
        """New work was routed to the replica: plan now if idle, or stop its decode stretch early."""
        if replica.boundary_at == math.inf:
            if replica.ready is not None:
                self._plan(replica)
            return
        if replica.segment_k > 0:  # fast-forwarding: the scheduler must see the arrival at the next boundary
            # At least one iteration: the stretch's first iteration had started when this arrival came.
            k = max(1, replica.iterations_by(self.env.now - replica.segment_start))
            if k < replica.segment_k:
                replica.segment_k = k
                self._schedule_boundary(replica, replica.segment_start + replica.stretch_duration(k))
        self.record(replica)

    def _schedule_boundary(self, replica: Replica, when: float) -> None:
        env = self.env
        version = replica.version = replica.version + 1
        replica.boundary_at = when
        call_after(env, max(0.0, when - env.now), partial(self._on_boundary, replica, version))  # a Timeout's order

    def _on_boundary(self, replica: Replica, version: int, _event: simpy.Event) -> None:
        if version != replica.version:
            return  # superseded: the stretch was cut short
        replica.boundary_at = math.inf
        if replica.segment_k > 0:
            self._finish(replica, replica.advance(replica.segment_k))
        else:
            self._end_iteration(replica)
        self._plan(replica)

    def _end_iteration(self, replica: Replica) -> None:
        """Apply an explicit iteration: prompt chunks progress, the decoding set steps once."""
        done = replica.advance(1) if replica.pending_decode else []
        handed: list[Request] = []
        for request, tokens in replica.pending_chunks:
            request.prefilled += tokens
            request.computed_tokens += tokens
            if request.prefilled < request.need:
                continue
            replica.prefilling.remove(request)
            replica.prefill_done(request)
            request.generated += 1  # the prefill produces a token
            if request.first_token is None:
                request.first_token = self.env.now
            if request.generated >= request.output_tokens:
                done.append(request)
            elif replica.shape.pool == "prefill":
                handed.append(request)
            else:
                replica.start_decoding(request)
        replica.pending_chunks = ()
        replica.pending_decode = False
        self._finish(replica, done)
        if handed:
            self._hand_off(replica, handed)

    def _hand_off(self, replica: Replica, handed: list[Request]) -> None:
        """Prefilled requests leave a prefill replica for the decode pool, through a KV-cache transfer
        (engine/disaggregation.py). Their KV tokens were freed with the prefill; with paged KV their
        prefix-cache entries are unpinned here (request_done), so later prompts can still hit them."""
        assert self.hand_off is not None
        service = self.services[replica.service]
        for request in handed:
            replica.outstanding -= 1
            replica.outstanding_tokens -= request.prompt_tokens + request.output_tokens
            replica.completed += 1  # its part (the prefill) is done
            service.outstanding -= 1
            replica.request_done(request)
            self.hand_off(replica, request)

    def _join_prefilled(self, replica: Replica) -> None:
        """Requests whose KV cache arrived from a prefill replica join decoding, while the batch and the KV
        cache (with the next iteration's token for every decoding request) hold them."""
        arrived = replica.prefilled_in
        while arrived and replica.batch < replica.max_batch:
            request = arrived[0]
            if not replica.can_join(request):
                break
            arrived.popleft()
            self._seq += 1
            request.seq = self._seq
            request.state = RequestState.RUNNING
            replica.join_decoding(request)

    def _finish(self, replica: Replica, done: list[Request]) -> None:
        if not done:  # the usual end of an explicit iteration: nobody finished
            return
        now = self.env.now
        service = self.services[replica.service]
        for request in done:
            request.state = RequestState.COMPLETED
            request.end = now
            replica.outstanding -= 1
            replica.outstanding_tokens -= request.prompt_tokens + request.output_tokens
            replica.completed += 1
            replica.output_tokens += request.output_tokens
            replica.request_done(request)
            service.outstanding -= 1
            self.finished += 1

    def _plan(self, replica: Replica) -> None:
        """Ask the replica scheduler for the next iteration and start it (or go idle)."""
        service = self.services[replica.service]
        if replica.prefilled_in:
            self._join_prefilled(replica)
        plan = service.scheduler.plan(replica)
        if plan.admit or plan.chunks:
            admitted = self._admit(replica, plan.admit) if plan.admit else {}
            chunks = self._chunks(replica, plan.chunks, admitted)
        else:  # the usual plan: decode only
            chunks = ()
        members = replica.members  # the decoding requests
        decode = bool(plan.decode) and len(members) > 0
        if decode:
            while replica.needs_preemption():
                replica.preempt_newest()
            decode = len(members) > 0
        now = self.env.now
        replica.segment_start = now
        if not chunks and not decode:
            if replica.prefilling or replica.decoding:
                raise PolicyError(f"{self._who(replica)}: planned nothing while {replica.batch} requests "
                                  "are in the batch")
            replica.segment_k = 0
            self._set_busy(replica, False)
            self.record(replica)
            if replica.draining and replica.outstanding == 0:
                service.stop_replica(replica)
            return
        if replica.busy_since is None:  # (a replica already busy stays so)
            self._set_busy(replica, True)
        if chunks or not self.fast_forward or replica.transfer_pending:
            replica.segment_k = 0
            replica.pending_chunks = chunks
            replica.pending_decode = decode
            duration = replica.iteration_time(chunks, decode) + replica.transfer_pending
            replica.transfer_pending = 0.0
            if decode and replica.paged:
                replica.reserve(1)
        else:
            replica.segment_first = replica.decode_time()
            replica.segment_k = replica.decode_room(replica.next_finish())
            duration = replica.stretch_duration(replica.segment_k)
            if replica.paged:
                replica.reserve(replica.segment_k)
        self.record(replica)
        self._schedule_boundary(replica, now + duration)

    def _who(self, replica: Replica) -> str:
        """The scheduler and replica an error names (built only when there is one)."""
        return f"replica_scheduler {self.services[replica.service].scheduler.name!r} on replica {replica.id}"

    def _admit(self, replica: Replica, ids: tuple[int, ...]) -> dict[int, Request]:
        admitted: dict[int, Request] = {}
        waiting = replica.waiting
        for request_id in ids:
            if waiting and waiting[0].id == request_id:  # the usual case: admission from the head
                found: Request | None = waiting[0]
            else:
                found = next((r for r in waiting if r.id == request_id), None)
            if found is None:
                raise PolicyError(f"{self._who(replica)}: admits request {request_id!r}, which is not waiting there")
            request = found
            if replica.batch + 1 > replica.max_batch:
                raise PolicyError(f"{self._who(replica)}: admits request {request_id} beyond "
                                  f"max_batch={replica.max_batch}")
            if replica.kv_cost(request) > replica.kv_free:
                raise PolicyError(f"{self._who(replica)}: admits request {request_id} needing "
                                  f"{replica.kv_cost(request)} KV tokens with {replica.kv_free} free")
            if waiting[0] is request:
                waiting.popleft()
            else:
                waiting.remove(request)
            self._seq += 1
            replica.admit(request, self._seq)
            admitted[request_id] = request
        return admitted

    def _chunks(self, replica: Replica, chunks: tuple[tuple[int, int], ...],
                admitted: dict[int, Request]) -> tuple[tuple[Request, int], ...]:
        if not chunks:
            return ()
        prefilling = {request.id: request for request in replica.prefilling}
        resolved: list[tuple[Request, int]] = []
        for request_id, tokens in chunks:
            request = prefilling.pop(request_id, None)  # pop: one chunk per request per iteration
            left = request.need - request.prefilled if request is not None else 0
            if request is None or not isinstance(tokens, int) or not 1 <= tokens <= left:
                raise PolicyError(f"{self._who(replica)}: chunk ({request_id!r}, {tokens!r}) is not 1..{left} "
                                  "prompt tokens of a request in the batch (or names one twice)")
            resolved.append((request, tokens))
        return tuple(resolved)

    # --- levels ---------------------------------------------------------------------------------
    def _set_busy(self, replica: Replica, busy: bool) -> None:
        now = self.env.now
        if busy and replica.busy_since is None:
            replica.busy_since = now
            self.levels.serving_busy[replica.accelerator] += replica.tensor_parallel
            replica.levels_stale = True
        elif not busy and replica.busy_since is not None:
            replica.busy_time += now - replica.busy_since
            replica.busy_since = None
            self.levels.serving_busy[replica.accelerator] -= replica.tensor_parallel
            replica.levels_stale = True

    def record(self, replica: Replica) -> None:
        """Report the replica's state and, when its busy state or power changed, the cluster levels."""
        now = self.env.now
        levels = self.levels
        levels.last_time = now
        batch = len(replica.members) + len(replica.prefilling)  # replica.batch
        shape = replica.shape
        power = shape.busy_w(batch) if replica.busy_since is not None else shape.idle_w  # replica.power()
        extra = power - shape.idle_w
        if extra != replica.reported_extra_w or replica.levels_stale:
            levels.serving_extra_w += extra - replica.reported_extra_w
            replica.reported_extra_w = extra
            replica.levels_stale = False
            levels.emit(now)
        self.recorder.replica_state(now, replica.id, batch, len(replica.waiting) + len(replica.prefilled_in),
                                    replica.kv_used_at(now), power)
        if replica.paged:
            replica.record_sample()

    def emit_levels(self) -> None:
        self.levels.emit(self.env.now)

    def capacity_wanted(self) -> bool:
        """Whether a service or the training queue waits for accelerators (so idle replicas should go)."""
        return self.training_waiting() or any(service.pending for service in self.services)

    def demand_appeared(self) -> None:
        """Work now waits for accelerators: idle services above their minimum reconsider their size."""
        self.capacity_freed()

    def capacity_freed(self) -> None:
        """Accelerators were released (a replica stopped, a training job ended): blocked services may grow."""
        if self.losses is not None and self.losses.replacements:
            self.losses.replace()
        for service in self.services:
            service.ensure_ticking()

    # --- failures (engine/failures.py, engine/serving_failures.py) ---------------------------------------
    @property
    def now(self) -> float:
        return self.env.now

    def replicas_on(self, node: int) -> list[tuple[int, int]]:
        return [(r.id, r.tensor_parallel) for r in self.replicas if r.node_id == node and r.stopped is None]

    def lose(self, replica_id: int, reason: str) -> None:
        assert self.losses is not None
        self.losses.lose(self, self.replicas[replica_id], reason)

    def set_idle(self, replica: Replica) -> None:
        self._set_busy(replica, False)

    def work_left(self) -> bool:
        return self.finished < len(self.requests)
