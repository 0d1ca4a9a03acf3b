"""Component failures and repairs on the shared fleet: accelerators, nodes and their network links.

Each component renews: it runs until its time to failure (exponential or Weibull, drawn from the
class's own named random stream, so every policy compared with one seed sees the same failures),
is out of service for a repair time drawn for the failure's cause, then starts a fresh life. The
next failure of the whole fleet is the top of one heap, so a quiet fleet costs one event per failure.

What a failure hits:
- accelerator: the job or replica holding that accelerator (slots of a node are mapped to its
  holders in a fixed order: training jobs by id, then replicas), or nobody if it was idle;
- node: every job and replica on the node; link (the node's network connection): every job that
  spans more nodes than this one and every replica on it; single-node jobs keep computing.
The failed accelerators (the whole node for node and link failures) leave service: free ones at once,
held ones as their holders let go (model/cluster.py), so nothing under repair is ever allocated.
A spare node of the pool, when one is left and the repair takes longer than the swap, puts the node
back after `swap_delay`; the spare returns to the shelf when the repair ends.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np
import simpy

from dcsim.engine.rng import stream
from dcsim.model import Cluster, Job, JobState

NETWORK_CLASSES = ("switch", "fabric_link", "storage")  # classes of the network and storage model


@dataclass(frozen=True)
class RepairTime:
    mean: float
    distribution: str = "fixed"  # fixed, exponential or lognormal
    sigma: float = 1.0  # lognormal: standard deviation of the log


@dataclass(frozen=True)
class ClassSpec:
    """One component class as the scenario gives it (scenario/failures.py, converted in build)."""

    name: str  # accelerator, node or link
    mtbf: float | None  # exponential, or
    weibull: tuple[float, float] | None  # (shape, scale)
    causes: tuple[tuple[str, float, RepairTime], ...]  # (name, share, repair)


@dataclass(frozen=True)
class FailureSettings:
    detection: float = 0.0
    lemon_fraction: float = 0.0
    lemon_multiplier: float = 1.0
    spares: tuple[tuple[str, int, float], ...] = ()  # (pool, nodes, swap delay)


@dataclass(frozen=True)
class FailureClass:
    name: str  # accelerator, node or link
    spec: ClassSpec
    node_of: np.ndarray  # component -> node id
    slot_of: np.ndarray  # component -> accelerator slot on its node (accelerator class), else -1
    causes: tuple[str, ...]
    cumulative: np.ndarray  # cumulative cause shares
    repairs: tuple[RepairTime, ...]


@dataclass
class FailureLog:
    """One row per failure, in metrics/failure_summary.py's FAILURE_COLUMNS order."""

    rows: list[tuple[object, ...]] = field(default_factory=list)


class TrainingTarget(Protocol):
    """The training engine as failures see it (engine/training.py)."""

    @property
    def jobs(self) -> Sequence[Job]: ...
    @property
    def finished(self) -> int: ...
    def holding(self) -> Iterable[Job]: ...
    def interrupt(self, job: Job, hold: float) -> None: ...


class SwitchTarget(Protocol):
    """The network as failures see it (engine/network_failures.py)."""

    def components(self, kind: str) -> list[str]: ...  # kind: switch or fabric_link
    def fail(self, kind: str, index: int) -> list[int]: ...  # ids of the jobs left without a route
    def restore(self, kind: str, index: int) -> list[int]: ...
    def cut_off(self) -> set[int]: ...  # node ids cut off from the largest island


class ServingTarget(Protocol):
    """The serving engine as failures see it (engine/serving_failures.py)."""

    def replicas_on(self, node: int) -> list[tuple[int, int]]: ...  # (replica id, accelerators)
    def lose(self, replica_id: int, reason: str) -> None: ...
    def work_left(self) -> bool: ...


class FailureProcess:
    def __init__(self, env: simpy.Environment, cluster: Cluster, spec: FailureSettings,
                 classes: Sequence[ClassSpec], seed: int, training: TrainingTarget,
                 on_change: Callable[[], None], network: SwitchTarget | None = None) -> None:
        self.env = env
        self.network = network
        self._lost = 0.0  # accelerator-seconds lost by the jobs a network failure stranded
        self._cut: set[int] = set()  # nodes the failed switches and links cut off (out of service)
        self.cluster = cluster
        self.spec = spec
        self.training = training
        self.serving: ServingTarget | None = None
        self.on_change = on_change  # levels and scheduling passes after capacity moved
        self.log = FailureLog()
        self.classes = [self._class(component) for component in classes]
        self._rngs = [stream(seed, f"failures.{c.name}") for c in self.classes]
        self._repair_rngs = [stream(seed, f"failures.{c.name}.repair") for c in self.classes]
        nodes = len(cluster.nodes)
        self.multiplier = np.ones(nodes)
        if spec.lemon_fraction > 0:
            lemons = stream(seed, "failures.lemons").random(nodes) < spec.lemon_fraction
            self.multiplier[lemons] = spec.lemon_multiplier
        self.spares = {pool: count for pool, count, _ in spec.spares}
        self.swap_delay = {pool: delay for pool, _, delay in spec.spares}
        self._down: dict[int, list[int]] = {}  # node -> accelerators out per ongoing outage
        self._heap: list[tuple[float, int, int]] = []
        self._version = 0  # of the one planned failure event; a replan voids the earlier

    def _class(self, spec: ClassSpec) -> FailureClass:
        name = spec.name
        sizes = np.array([node.size for node in self.cluster.nodes], dtype=np.int64)
        ids = np.arange(len(sizes), dtype=np.int64)
        if name in NETWORK_CLASSES:  # the network's switches or links (engine/network_failures.py)
            count = len(self.network.components(name)) if self.network is not None else 0
            node_of = slot_of = np.full(count, -1, dtype=np.int64)
        elif name == "accelerator":
            node_of = np.repeat(ids, sizes)
            slot_of = np.arange(len(node_of), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        else:
            node_of, slot_of = ids, np.full(len(ids), -1, dtype=np.int64)
        shares = np.array([share for _, share, _ in spec.causes])
        return FailureClass(name, spec, node_of, slot_of, tuple(cause for cause, _, _ in spec.causes),
                            np.cumsum(shares / shares.sum()), tuple(repair for _, _, repair in spec.causes))

    # --- time to failure -----------------------------------------------------------------------------
    def start(self) -> None:
        for index, failure_class in enumerate(self.classes):
            count = len(failure_class.node_of)
            times = self._lifetimes(index, failure_class.node_of, np.zeros(count))
            self._heap.extend(zip(times.tolist(), [index] * count, range(count), strict=True))
        heapq.heapify(self._heap)
        self._schedule()

    def _lifetimes(self, index: int, nodes: np.ndarray, starts: np.ndarray) -> np.ndarray:
        spec, rng = self.classes[index].spec, self._rngs[index]
        multiplier = np.where(nodes >= 0, self.multiplier[np.maximum(nodes, 0)], 1.0)
        if spec.weibull is not None:  # a hazard m times higher: scale / m^(1/shape)
            shape, scale = spec.weibull
            return starts + scale * rng.weibull(shape, len(nodes)) / multiplier ** (1.0 / shape)
        assert spec.mtbf is not None
        return starts + rng.exponential(spec.mtbf, len(nodes)) / multiplier

    def _schedule(self) -> None:
        self._version += 1
        if self._heap:
            delay = max(0.0, self._heap[0][0] - self.env.now)
            self.env.timeout(delay).callbacks.append(partial(self._on_failure, self._version))

    def _work_left(self) -> bool:
        training = self.training
        return training.finished < len(training.jobs) or (self.serving is not None and self.serving.work_left())

    # --- a failure -------------------------------------------------------------------------------------
    def _on_failure(self, version: int, _event: simpy.Event) -> None:
        if version != self._version or not self._work_left():
            return  # nothing left to hit: the run ends at its last completion
        when, index, component = heapq.heappop(self._heap)
        failure_class = self.classes[index]
        rng = self._repair_rngs[index]
        cause_index = min(int(np.searchsorted(failure_class.cumulative, rng.random(), side="right")),
                          len(failure_class.causes) - 1)
        cause = failure_class.causes[cause_index]
        repair = _repair_time(failure_class.repairs[cause_index], rng)
        if failure_class.name in NETWORK_CLASSES:
            self._network_failure(when, index, component, cause, repair)
            return
        node_id = int(failure_class.node_of[component])
        node = self.cluster.nodes[node_id]
        spare = False
        back = repair
        if node.pool in self.spares and self.spares[node.pool] > 0 and repair > self.swap_delay[node.pool]:
            spare, back = True, self.swap_delay[node.pool]
            self.spares[node.pool] -= 1
            self.env.timeout(repair).callbacks.append(partial(self._spare_repaired, node.pool))
        count = 1 if failure_class.name == "accelerator" else node.size
        slot = int(failure_class.slot_of[component])
        self._down.setdefault(node_id, []).append(count)
        self._apply_down(node_id)  # first: what the holders hit now let go of stays out of service
        jobs, replicas, lost = self._hit(failure_class.name, node_id, slot, cause)
        self.env.timeout(back).callbacks.append(partial(self._repaired, index, component, node_id, count))
        self.log.rows.append((when, failure_class.name, node.name, node.pool, cause, count, repair, when + back,
                              spare, ";".join(map(str, jobs)), ";".join(map(str, replicas)), lost))
        self.on_change()
        self._schedule()

    def _hit(self, kind: str, node_id: int, slot: int, cause: str) -> tuple[list[int], list[int], float]:
        """Stop the jobs and replicas this failure takes down; return their ids and the work lost."""
        holders: list[tuple[Job, int]] = []
        for job in self.training.holding():
            count = next((c for n, c in job.allocation if n == node_id), 0)
            if count and not (job.state is JobState.SUSPENDING and job.pending_save is None):
                holders.append((job, count))  # (a job already stopped by a failure is left alone)
        holders.sort(key=lambda item: item[0].id)
        replicas = self.serving.replicas_on(node_id) if self.serving is not None else []
        hit_jobs: list[Job] = []
        hit_replicas: list[int] = []
        if kind == "accelerator":  # the slot's holder: jobs' accelerators first, then replicas'
            owners: list[Job | int] = [job for job, count in holders for _ in range(count)]
            owners += [replica for replica, count in replicas for _ in range(count)]
            owner = owners[slot] if slot < len(owners) else None
            if isinstance(owner, Job):
                hit_jobs.append(owner)
            elif owner is not None:
                hit_replicas.append(owner)
        else:
            hit_jobs = [job for job, _ in holders if kind == "node" or len(job.allocation) > 1]
            hit_replicas = [replica for replica, _ in replicas]
        lost = 0.0
        for job in hit_jobs:
            before = job.lost_service
            self.training.interrupt(job, self.spec.detection)
            lost += job.lost_service - before
        for replica in hit_replicas:
            assert self.serving is not None
            self.serving.lose(replica, f"{kind} failure ({cause})")
        return [job.id for job in hit_jobs], hit_replicas, lost

    # --- switches and links of the network model ----------------------------------------------------
    def interrupt_stranded(self, job: Job) -> None:
        """A job a failed switch or link left without a route (engine/network_failures.py)."""
        if job.state is JobState.SUSPENDING and job.pending_save is None:
            return  # already stopped by a failure
        before = job.lost_service
        self.training.interrupt(job, self.spec.detection)
        self._lost += job.lost_service - before

    def _network_failure(self, when: float, index: int, component: int, cause: str, repair: float) -> None:
        assert self.network is not None
        kind = self.classes[index].name
        name = self.network.components(kind)[component]
        self._lost = 0.0
        stranded = self.network.fail(kind, component)
        jobs, replicas, down = self._recut(cause)
        jobs = sorted(set(jobs) | set(stranded))
        self.env.timeout(repair).callbacks.append(partial(self._network_repaired, index, component))
        self.log.rows.append((when, kind, name, "", cause, down, repair, when + repair, False,
                              ";".join(map(str, jobs)), ";".join(map(str, replicas)), self._lost))
        self.on_change()
        self._schedule()

    def _recut(self, cause: str) -> tuple[list[int], list[int], int]:
        """Nodes newly cut off leave service (their multi-node jobs and replicas stop, as for a link);
        nodes reachable again come back. Returns the jobs and replicas hit and accelerators taken."""
        assert self.network is not None
        now_cut = self.network.cut_off()
        jobs: list[int] = []
        replicas: list[int] = []
        down = 0
        for node_id in sorted(now_cut - self._cut):
            size = self.cluster.nodes[node_id].size
            down += size
            self._down.setdefault(node_id, []).append(size)
            self._apply_down(node_id)
            hit_jobs, hit_replicas, lost = self._hit("link", node_id, -1, cause)
            jobs += hit_jobs
            replicas += hit_replicas
            self._lost += lost
        for node_id in sorted(self._cut - now_cut):
            self._down[node_id].remove(self.cluster.nodes[node_id].size)
            self._apply_down(node_id)
        self._cut = now_cut
        return jobs, replicas, down

    def _network_repaired(self, index: int, component: int, _event: simpy.Event) -> None:
        assert self.network is not None
        self.network.restore(self.classes[index].name, component)
        self._recut("")
        self._renew(index, component, -1)
        self.on_change()

    # --- repairs --------------------------------------------------------------------------------------
    def _apply_down(self, node_id: int) -> None:
        outages = self._down.get(node_id, [])
        self.cluster.set_out_of_service(node_id, sum(outages))
        if not outages:
            self._down.pop(node_id, None)

    def _repaired(self, index: int, component: int, node_id: int, count: int, _event: simpy.Event) -> None:
        self._down[node_id].remove(count)
        self._apply_down(node_id)
        self._renew(index, component, node_id)
        self.on_change()

    def _renew(self, index: int, component: int, node_id: int) -> None:
        """The component is back with a fresh life."""
        life = self._lifetimes(index, np.array([node_id]), np.array([self.env.now]))
        heapq.heappush(self._heap, (float(life[0]), index, component))
        if self._heap[0][2] == component and self._heap[0][1] == index:
            self._schedule()  # it fails before what was planned next

    def _spare_repaired(self, pool: str, _event: simpy.Event) -> None:
        self.spares[pool] += 1


def _repair_time(repair: RepairTime, rng: np.random.Generator) -> float:
    if repair.distribution == "fixed":
        return repair.mean
    if repair.distribution == "exponential":
        return float(rng.exponential(repair.mean))
    sigma = repair.sigma  # lognormal with this mean: mu = ln(mean) - sigma^2 / 2
    return float(rng.lognormal(math.log(repair.mean) - sigma * sigma / 2, sigma))
