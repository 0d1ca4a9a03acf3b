"""Node power states for idle shutdown: on, off, waking. The policy decides; this module applies.

Nodes hosting serving replicas (loading or serving) hold allocated accelerators, so they are never
idle and never powered off; a service whose autoscaler wants a replica that no powered node has room
for reports it (engine/service.py), and the policy wakes a node for it (the replica then pays the wake
latency before its cold start).

An off or waking node is held out of service in the cluster (Cluster.set_out_of_service), so no
job or replica is placed on it; the recorder's linear model would count it as idle accelerators
plus a busy host, so `adjust_w` replaces that with the node's off or wake-up power. A waking node
becomes usable after the wake latency, and the training engine is told (a scheduling pass).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial

import simpy

from dcsim.model import Cluster
from dcsim.policies.power.base import NodeDecision, NodeState, PowerPolicyBase


@dataclass(frozen=True)
class NodesNow:
    """The NodesView handed to the policy."""

    now: float
    nodes: Sequence[NodeState]
    cluster: Cluster
    jobs: Iterable[tuple[int, tuple[str, ...]]]
    wants: Sequence[tuple[str, int]] = ()

    def free(self, accelerator: str) -> int:
        return self.cluster.free[accelerator]

    def waiting_jobs(self) -> Iterable[tuple[int, tuple[str, ...]]]:
        return self.jobs

    def serving_wants(self) -> Sequence[tuple[str, int]]:
        return self.wants


class NodePower:
    def __init__(self, env: simpy.Environment, cluster: Cluster, policy: PowerPolicyBase,
                 waiting_jobs: Callable[[], Iterable[tuple[int, tuple[str, ...]]]],
                 capacity_changed: Callable[[], None],
                 emit: Callable[[float], None], off_w: float, wake_w: float | None, wake_latency: float) -> None:
        self.env = env
        self.cluster = cluster
        self.policy = policy
        self.waiting_jobs = waiting_jobs
        self.capacity_changed = capacity_changed
        self.emit = emit
        self.wake_latency = wake_latency
        self.state = ["on"] * len(cluster.nodes)
        self.idle_since: list[float | None] = [0.0] * len(cluster.nodes)
        # What the linear model counts for a node held out of service, and what it draws instead.
        idle = {m: cluster.specs[m].idle_w.value for m in cluster.accelerator_models}
        self.counted_w = [n.size * idle[n.accelerator] + n.host_busy_w for n in cluster.nodes]
        self.off_w = off_w
        self.wake_w = [n.size * idle[n.accelerator] + n.host_idle_w if wake_w is None else wake_w
                       for n in cluster.nodes]
        self.adjust_w = 0.0
        self.work_left: Callable[[], bool] = lambda: True
        # Replicas inference services want and found no node for (engine/service.py blocked_wants).
        self.serving_wants: Callable[[], Sequence[tuple[str, int]]] = lambda: ()
        self._timer_at = math.inf
        self.off_seconds = 0.0  # node-seconds powered off
        self.wakes = 0
        self._changed_at = 0.0
        self._off_count = 0
        self._states: list[NodeState | None] = [None] * len(cluster.nodes)  # the policy's view, kept while unchanged

    def settle(self, now: float) -> None:
        """Bring idle clocks up to now, ask the policy, apply its decision, set the next idle timer."""
        self.off_seconds += self._off_count * (now - self._changed_at)
        self._changed_at = now
        cluster = self.cluster
        states = self._states
        free_on, state, idle_since = cluster.free_on, self.state, self.idle_since
        for node in cluster.nodes:
            i = node.id
            idle = state[i] == "on" and free_on[i] == node.size
            if not idle:
                idle_since[i] = None
            elif idle_since[i] is None:
                idle_since[i] = now
            seen = states[i]
            if seen is None or seen.state != state[i] or seen.idle_since != idle_since[i]:  # else reuse it
                states[i] = NodeState(i, node.pool, node.accelerator, node.size, state[i], idle_since[i])
        decision: NodeDecision = self.policy.nodes(NodesNow(now, tuple(states), cluster,  # type: ignore[arg-type]
                                                            self.waiting_jobs(), self.serving_wants()))
        for node_id in decision.power_off:
            self._power_off(node_id, now)
        for node_id in decision.wake:
            self._wake(node_id)
        if decision.check_at < self._timer_at and decision.check_at > now:
            self._timer_at = decision.check_at
            self.env.timeout(decision.check_at - now).callbacks.append(self._on_timer)
        self._adjust()

    def _power_off(self, node_id: int, now: float) -> None:
        node = self.cluster.nodes[node_id]
        if self.state[node_id] != "on" or self.cluster.free_on[node_id] != node.size:
            raise RuntimeError(f"power policy asked to power off node {node.name}, which is not idle and on")
        self.cluster.set_out_of_service(node_id, node.size)
        self.state[node_id] = "off"
        self.idle_since[node_id] = None
        self._off_count += 1

    def _wake(self, node_id: int) -> None:
        if self.state[node_id] != "off":
            return
        self.state[node_id] = "waking"
        self._off_count -= 1
        self.wakes += 1
        self.env.timeout(self.wake_latency).callbacks.append(partial(self._awake, node_id))

    def _awake(self, node_id: int, _event: simpy.Event) -> None:
        self.state[node_id] = "on"
        self.cluster.set_out_of_service(node_id, 0)
        self.capacity_changed()
        self.emit(self.env.now)

    def _on_timer(self, _event: simpy.Event) -> None:
        self._timer_at = math.inf
        if not self.work_left():
            return  # nothing left to run: the run ends at its last change, not at a later idle timer
        self.emit(self.env.now)

    def _adjust(self) -> None:
        total = 0.0
        for i, state in enumerate(self.state):
            if state == "off":
                total += self.off_w - self.counted_w[i]
            elif state == "waking":
                total += self.wake_w[i] - self.counted_w[i]
        self.adjust_w = total

    def counts(self) -> tuple[int, int]:
        return self.state.count("off"), self.state.count("waking")
