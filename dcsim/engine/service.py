"""One inference service at run time: admission of arrivals, routing, and its replicas' lifecycle.

Replicas start on one node (best fit: the node of the model with the fewest free accelerators that
still fits), load their weights (cold start) unless they are the initial ones, serve, and drain
before stopping. The autoscaler is asked every `interval` seconds while the service has anything
left to do, so a run without a horizon still ends.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import numpy as np
import simpy

from dcsim.engine.kv_blocks import admissible_tokens, new_replica
from dcsim.engine.levels import LevelBoard
from dcsim.engine.replica import Replica, ReplicaShape
from dcsim.errors import PolicyError, ScenarioError
from dcsim.metrics.protocol import Recorder
from dcsim.model import Cluster, Request, RequestState
from dcsim.policies.serving_base import Autoscaler, Balancer, ReplicaScheduler


class ServingHost(Protocol):
    """What a service needs from the serving engine that runs it (engine/serving.py implements it).

    Declared here so that this module does not import the engine, which imports it."""

    cluster: Cluster
    recorder: Recorder
    levels: LevelBoard
    replicas: list[Replica]
    load_weights: Callable[[str, int, float, Callable[[], None]], None] | None
    on_capacity_change: Callable[[], None]

    def wake(self, replica: Replica) -> None: ...
    def record(self, replica: Replica) -> None: ...
    def emit_levels(self) -> None: ...
    def capacity_wanted(self) -> bool: ...
    def demand_appeared(self) -> None: ...
    def capacity_freed(self) -> None: ...


@dataclass
class _BalancerView:
    env: simpy.Environment
    replicas: tuple[Replica, ...]
    rng: np.random.Generator

    @property
    def now(self) -> float:
        return self.env.now


@dataclass
class _ScalerView:
    now: float
    replicas: int
    ready: int
    min_replicas: int
    max_replicas: int
    waiting: int
    outstanding: int
    busy_fraction: float


def choose_replica(balancer: Balancer, request: Request, view: _BalancerView, smallest_kv: int,
                   role: str) -> Replica | None:
    """The balancer's choice among the view's replicas whose KV cache can hold the request (None when none
    can), counted as outstanding there; a choice outside the offered ones is a policy error."""
    offered = view.replicas
    tokens = request.prompt_tokens + request.output_tokens
    if tokens > smallest_kv:  # only then can an offered replica be too small for it
        offered = tuple(r for r in offered if r.kv_capacity >= tokens)
        if not offered:
            return None
        view = _BalancerView(view.env, offered, view.rng)
    chosen = balancer.choose(request, view)
    replica = next((r for r in offered if r.id == chosen), None) if not isinstance(chosen, bool) else None
    if replica is None:
        raise PolicyError(f"{role} {balancer.name!r}: chose replica {chosen!r} for request {request.id}, "
                          f"not one of the offered {[r.id for r in offered]}")
    request.replica = replica.id
    replica.outstanding += 1
    replica.outstanding_tokens += tokens
    return replica


class ServiceRuntime:
    def __init__(self, env: simpy.Environment, index: int, name: str, shapes: Sequence[ReplicaShape],
                 initial: Sequence[int], limits: Sequence[int], min_replicas: int, scheduler: ReplicaScheduler,
                 balancer: Balancer, autoscaler: Autoscaler, rng: np.random.Generator, arrivals: int,
                 source: str = "") -> None:
        self.env = env
        self.index = index
        self.name = name
        self.shapes = list(shapes)
        self.initial = list(initial)
        self.limits = list(limits)
        self.min_replicas = min_replicas
        self.max_replicas = sum(limits)
        self.scheduler = scheduler
        self.balancer = balancer
        self.autoscaler = autoscaler
        self.source = source  # "scenario.yaml: workload.inference.services.N" for error messages
        self.engine: ServingHost
        self.replicas: list[Replica] = []
        self.routable: list[Replica] = []
        self.view = _BalancerView(env, (), rng)
        self.pending: deque[Request] = deque()  # accepted, no replica to go to yet
        self.arrivals_left = arrivals
        self.outstanding = 0
        # Groups that can ever run a replica: those that start with one, and under an autoscaler those allowed one.
        startable = limits if autoscaler.interval is not None else initial
        self.max_kv = max((admissible_tokens(shape) for shape, n in zip(shapes, startable, strict=True) if n > 0),
                          default=0)
        self._route_scheduled = False
        self._idle_ticks = 0
        self._smallest_kv = 0  # of the routable replicas
        self.scale_up_blocked = 0
        # Idle shutdown (engine/power_nodes.py): (accelerator, tensor_parallel) of each replica the last
        # decision wanted and found no node for, and a hook told when that happens (None: no such policy).
        self.blocked_wants: list[tuple[str, int]] = []
        self.on_blocked: Callable[[], None] | None = None
        self._ticking = False
        self._busy_mark = 0.0
        self._ready_mark = 0.0
        self._mark_time = 0.0

    # --- arrivals and routing -------------------------------------------------------------------
    def accept(self, request: Request) -> Replica | None:
        """Reject what no replica can ever hold; route the rest (or hold it until a replica is ready)."""
        tokens = request.prompt_tokens + request.output_tokens
        if tokens > self.max_kv:
            request.state = RequestState.REJECTED
            request.reason = "longer than the KV cache can hold"
            return None
        self.outstanding += 1
        if not self.routable:
            self.pending.append(request)
            self.engine.demand_appeared()
            return None
        return self._route(request)

    def _route(self, request: Request) -> Replica | None:
        replica = choose_replica(self.balancer, request, self.view, self._smallest_kv, "balancer")
        if replica is None:
            self.pending.append(request)
            return None
        replica.waiting.append(request)
        return replica

    def _route_pending(self) -> None:
        touched: dict[int, Replica] = {}
        held: deque[Request] = deque()
        while self.pending:
            request = self.pending.popleft()
            replica = self._route(request) if self.routable else None
            if replica is None:
                held.append(request)
                if not self.routable:
                    break
            else:
                touched[replica.id] = replica
        held.extend(self.pending)
        self.pending = held
        for replica in touched.values():
            self.engine.wake(replica)

    # --- replicas -------------------------------------------------------------------------------
    def start_initial_replicas(self) -> None:
        for group, count in enumerate(self.initial):
            for _ in range(count):
                if self._start_replica(group, warm=True) is None:
                    shape = self.shapes[group]
                    raise ScenarioError([f"{self.source}.replicas.{group}: cannot place {count} initial replicas "
                                         f"of {shape.tensor_parallel} x {shape.accelerator} on free nodes "
                                         f"(each replica needs {shape.tensor_parallel} on one node)"])

    def _start_replica(self, group: int, warm: bool) -> Replica | None:
        shape = self.shapes[group]
        cluster = self.engine.cluster
        node_id = None
        for free in range(shape.tensor_parallel, cluster.max_node_size[shape.accelerator] + 1):
            nodes = cluster.nodes_with_free(shape.accelerator, free)
            if nodes:
                node_id = nodes[0]
                break
        if node_id is None:
            return None
        cluster.allocate(node_id, shape.tensor_parallel)
        replica = new_replica(self.env, len(self.engine.replicas), self.index, self.name, shape, node_id,
                          cluster.nodes[node_id].name)
        self.engine.replicas.append(replica)
        self.replicas.append(replica)
        self.engine.recorder.replica_added(replica)
        self.engine.record(replica)
        self.engine.on_capacity_change()
        if warm:
            self._ready(replica)
        else:
            self.engine.emit_levels()
            if shape.weights_from is not None and self.engine.load_weights is not None:
                self.engine.load_weights(shape.weights_from, node_id, shape.weight_bytes,
                                         partial(self._ready, replica))
            else:
                self.env.timeout(shape.cold_start).callbacks.append(partial(self._on_loaded, replica))
        return replica

    def start_replacement(self, group: int) -> Replica | None:
        """A replica for one lost to a failure: a cold start, when one fits."""
        return self._start_replica(group, warm=False) if self._fits(group) else None

    def _on_loaded(self, replica: Replica, _event: simpy.Event) -> None:
        self._ready(replica)

    def _ready(self, replica: Replica) -> None:
        replica.ready = self.env.now
        if replica.draining:
            self.stop_replica(replica)
            return
        bisect.insort(self.routable, replica, key=lambda r: r.id)
        self._set_routable()
        self.engine.emit_levels()
        if self.pending and not self._route_scheduled:
            # Route after every replica ready at this instant is routable, not all to the first of them.
            self._route_scheduled = True
            self.env.timeout(0).callbacks.append(self._on_route_pending)

    def _on_route_pending(self, _event: simpy.Event) -> None:
        self._route_scheduled = False
        self._route_pending()

    def _set_routable(self) -> None:
        self.view.replicas = tuple(self.routable)
        self._smallest_kv = min((r.kv_capacity for r in self.routable), default=0)

    def stop_replica(self, replica: Replica) -> None:
        if replica.stopped is not None:
            return
        replica.stopped = self.env.now
        if replica.reported_extra_w:  # a replica lost while busy (a failure) stops drawing above idle
            self.engine.levels.serving_extra_w -= replica.reported_extra_w
            replica.reported_extra_w = 0.0
        self.engine.recorder.replica_state(self.env.now, replica.id, 0, 0, 0, 0.0)
        self.engine.cluster.release(replica.node_id, replica.tensor_parallel)
        self.engine.on_capacity_change()
        self.engine.emit_levels()
        self.engine.capacity_freed()

    def _drain(self, replica: Replica) -> None:
        replica.draining = True
        if replica in self.routable:
            self.routable.remove(replica)
            self._set_routable()
        if replica.ready is not None and replica.outstanding == 0 and replica.busy_since is None:
            self.stop_replica(replica)

    def active(self) -> list[Replica]:
        """Replicas serving or loading, not draining, oldest first."""
        return [r for r in self.replicas if not r.draining and r.stopped is None]

    # --- autoscaling ----------------------------------------------------------------------------
    def ensure_ticking(self) -> None:
        interval = self.autoscaler.interval
        if interval is None or self._ticking or not self._has_work():
            return
        self._ticking = True
        self._idle_ticks = 0
        self._busy_and_ready()  # start the busy-fraction window now
        self.env.timeout(interval).callbacks.append(self._tick)

    def _has_work(self) -> bool:
        """Requests to come or to finish; or replicas above the minimum that others wait for."""
        if self.arrivals_left > 0 or self.outstanding > 0:
            return True
        return len(self.active()) > self.min_replicas and self.engine.capacity_wanted()

    def _tick(self, _event: simpy.Event) -> None:
        self._ticking = False
        if not self._has_work():
            self.blocked_wants = []
            return  # nothing left: no decision, so the run ends at its last completion
        active = self.active()
        busy, ready_time = self._busy_and_ready()
        waiting = len(self.pending) + sum(len(r.waiting) for r in active)
        ready = sum(1 for r in active if r.ready is not None)
        view = _ScalerView(self.env.now, len(active), ready, self.min_replicas, self.max_replicas, waiting,
                           self.outstanding, busy / ready_time if ready_time > 0 else 0.0)
        desired = self.autoscaler.desired(view)
        if not isinstance(desired, int | np.integer) or isinstance(desired, bool):
            raise PolicyError(f"autoscaler {self.autoscaler.name!r} for service {self.name!r}: desired replicas "
                              f"must be an integer, got {desired!r}")
        desired = min(max(int(desired), self.min_replicas), self.max_replicas)
        changed = self._scale(active, desired)
        # Stop asking when nothing can change, or a run without a horizon would never end: with work left,
        # after 2 checks in which nothing ran, loaded or started (capacity_freed restarts the checks); when
        # idle above the minimum, after 100 checks that changed nothing.
        moving = changed or busy > 0 or any(r.busy_since is not None or r.ready is None for r in self.active())
        self._idle_ticks = 0 if moving or self.arrivals_left > 0 else self._idle_ticks + 1
        if self._idle_ticks < (2 if self.outstanding > 0 else 100):
            self._ticking = True
            self.env.timeout(self.autoscaler.interval or 0.0).callbacks.append(self._tick)

    def _scale(self, active: list[Replica], desired: int) -> bool:
        """Start or drain replicas towards `desired`; return whether any was started or drained."""
        stranded = max((r.prompt_tokens + r.output_tokens for r in self.pending), default=0)
        if stranded:  # a request waits for a replica large enough: never drain while it waits
            capable = any(r.kv_capacity >= stranded for r in active)
            desired = max(desired, len(active) + (0 if capable else 1))
            if capable:
                stranded = 0
        started = 0
        self.blocked_wants = []
        if desired > len(active):
            counts = [0] * len(self.shapes)
            for replica in active:
                counts[replica.shape.group] += 1
            for _ in range(desired - len(active)):
                groups = [g for g in range(len(self.shapes)) if counts[g] < self.limits[g] and self._fits(g)]
                bigger = [g for g in groups if self.shapes[g].kv_capacity >= stranded]
                group = next(iter(bigger or groups), None)
                if group is None:
                    self.scale_up_blocked += 1
                    if self.on_blocked is not None:
                        self._blocked(desired - len(active) - started, counts, stranded)
                    break
                self._start_replica(group, warm=False)
                counts[group] += 1
                started += 1
                stranded = 0
        else:
            for replica in reversed(active[desired:]):
                self._drain(replica)
            return len(active) > desired
        return started > 0

    def _blocked(self, missing: int, counts: list[int], stranded: int) -> None:
        """Note the replicas wanted that no node has room for (the shape each would take) and say so."""
        groups = [g for g in range(len(self.shapes)) if counts[g] < self.limits[g]]
        bigger = [g for g in groups if self.shapes[g].kv_capacity >= stranded]
        group = next(iter(bigger or groups), None)
        if group is not None:
            shape = self.shapes[group]
            self.blocked_wants = [(shape.accelerator, shape.tensor_parallel)] * missing
            assert self.on_blocked is not None
            self.on_blocked()

    def _fits(self, group: int) -> bool:
        shape = self.shapes[group]
        cluster = self.engine.cluster
        return any(cluster.nodes_with_free(shape.accelerator, free)
                   for free in range(shape.tensor_parallel, cluster.max_node_size[shape.accelerator] + 1))

    def _busy_and_ready(self) -> tuple[float, float]:
        """Busy and ready replica-seconds since the last decision."""
        now = self.env.now
        busy = ready = 0.0
        for replica in self.replicas:
            if replica.ready is None:
                continue
            busy += replica.busy_time + (now - replica.busy_since if replica.busy_since is not None else 0.0)
            end = replica.stopped if replica.stopped is not None else now
            ready += max(0.0, end - max(replica.ready, 0.0))
        busy_delta, ready_delta = busy - self._busy_mark, ready - self._ready_mark
        self._busy_mark, self._ready_mark = busy, ready
        return busy_delta, ready_delta
