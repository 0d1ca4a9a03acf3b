"""What a training job sends and reads while it computes, and what that does to its speed.

Gradient all-reduce: while a job spanning several nodes computes, its ring has one stream per hop
(node i -> node i+1) and per host uplink; they take their max-min fair share of the links beside
every other job's streams. Streams stay open for the whole run of the job (a fluid model: jobs that
share a link are taken to communicate at the same time, the worst case). From the rate r the
slowest hop gets, one all-reduce of S gradient bytes over n accelerators on k nodes takes

    ring:          2 (n - 1) / n x S / min(r, b) + 2 (n - 1) x l_max
    hierarchical:  2 (g - 1) / g x S / b + 2 (g - 1) x l_nv  +  2 (k - 1) / k x S / r + 2 (k - 1) x l_max

with b the intra-node (NVLink/PCIe) bandwidth per accelerator and direction, g accelerators per
node and l_max the longest hop latency; inside one node only the intra-node terms remain. A step
takes T = c + (1 - overlap) x comm. The job's quoted work holds for its consolidated placement on
an idle network (T0, with the host's own link bandwidth), so its speed is scaled by T0 / T.

Dataset input: one capped stream per node from the dataset's tier, asking for the rate the job
reads at full speed; if it gets less, the step takes T0 x want / got when that exceeds T.

Checkpoints: every `interval` of running time (counted from the end of the previous write) the
job writes its state from all its nodes to a tier; the bytes are reserved first and a write that
does not fit fails the job. In `stall` mode the job makes no progress until the write ends.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Protocol

import simpy

from dcsim.engine.collectives import allreduce_seconds
from dcsim.engine.fabric import Fabric, TransferGroup
from dcsim.engine.lifecycle import Lifecycle
from dcsim.engine.storage import StorageSystem
from dcsim.engine.traffic_failures import TrafficFailures
from dcsim.errors import ScenarioError
from dcsim.model import Cluster, Job, JobState
from dcsim.model.topology import Topology


class RateSink(Protocol):
    def update_rate(self, job: Job, factor: float, comm_share: float, io_share: float) -> None: ...
    def fail(self, job: Job, reason: str) -> None: ...


@dataclass(frozen=True)
class JobProfile:
    """Per (model, accelerator, gang size): what one step computes and moves."""

    compute: float  # seconds of computation per step on this accelerator
    gradient_bytes: float
    checkpoint_bytes: float


@dataclass(frozen=True)
class TrafficSettings:
    algorithm: str = "ring"
    overlap: float = 0.0
    dataset_tier: str | None = None
    dataset_rate: float = 0.0  # bytes/s per accelerator at full speed
    checkpoint_tier: str | None = None
    checkpoint_interval: float = math.inf
    checkpoint_stall: bool = True
    checkpoint_keep: int = 1
    checkpoint_retain: bool = False
    intra_latency: float = 1e-6


@dataclass(eq=False, slots=True)
class _Running:
    job: Job
    refresh: Callable[[], None]
    counts: list[int]  # accelerators per node of the allocation
    profile: JobProfile
    ideal_step: float = 0.0  # T0
    hops: list[list[int]] = field(default_factory=list)  # ring streams per hop
    ring: list[int] = field(default_factory=list)  # the same streams in one list
    # With one stream per hop (and at least two hops): reads the hops' rates from the network's rates
    # in one call (an itemgetter of `ring`), the common case refreshed hundreds of thousands of times.
    read_ring: Callable[[Mapping[int, float]], tuple[float, ...]] | None = None
    per_hop: float = 0.0  # bytes each hop moves per step
    averages: list[float] = field(default_factory=list)  # what each ring stream moves on average
    # The slowest hop's rate when the job's speed and averages depend on nothing else (one stream per
    # hop, no dataset stream, every stream sending less than its rate on average), else None.
    quiet: float | None = None
    hop_latency: float = 0.0
    dataset: list[tuple[int, float]] = field(default_factory=list)  # (stream, bytes/s wanted)
    stalled: bool = False
    starved: bool = False  # its dataset tier has failed: no input, no progress until it is back
    epoch: int = 0
    writing: TransferGroup | None = None
    stored: deque[list[tuple[int, float]]] = field(default_factory=deque)  # checkpoints kept, oldest first


class TrainingTraffic(TrafficFailures):
    def __init__(self, env: simpy.Environment, fabric: Fabric, cluster: Cluster, topology: Topology | None,
                 storage: StorageSystem | None, profile: Callable[[Job], JobProfile],
                 intra_bandwidth: Mapping[str, float], settings: TrafficSettings) -> None:
        self.env = env
        self.fabric = fabric
        self.cluster = cluster
        self.topology = topology
        self.storage = storage
        self.profile = profile
        self.intra_bandwidth = intra_bandwidth
        self.settings = settings
        self.sink: RateSink | None = None
        self._running: dict[int, _Running] = {}
        self._fixed_speeds: dict[tuple[str, JobProfile, int], tuple[float, float, float]] = {}
        self._host_uplinks: dict[str, list[int]] = {}
        self.on_storage_change: Callable[[], None] = lambda: None
        self.checkpoint_interval: Callable[[Job], float] | None = None  # per job (Young/Daly); else settings'
        self.unroutable: Callable[[Job], None] | None = None  # a job with no route left (failed switches)

    # --- job lifecycle ---------------------------------------------------------------------------
    def started(self, job: Job) -> None:
        """The job begins computing on its allocation: open its streams, set its speed. With failed
        switches a route may be missing (engine/network_failures.py): the job is then stopped."""
        try:
            self._open(job)
        except ScenarioError:
            if self.topology is None or not self.topology.down or self.unroutable is None:
                raise
            self.stopped(job)
            self.unroutable(job)

    def _open(self, job: Job) -> None:
        profile = self.profile(job)
        settings = self.settings
        if len(job.allocation) == 1 and (settings.dataset_tier is None or self.storage is None) \
                and (settings.checkpoint_tier is None or self.storage is None):
            if self.sink is not None:  # nothing on the fabric: nothing to track
                self.sink.update_rate(job, *self._fixed_speed(job, profile))
            return
        run = _Running(job, lambda: None, [count for _, count in job.allocation], profile)
        run.refresh = partial(self._refresh, run)
        self._running[job.id] = run
        run.ideal_step = profile.compute + (1 - self.settings.overlap) * self._ideal_comm(job, profile)
        nodes = [node for node, _ in job.allocation]
        if self.topology is not None and len(nodes) > 1:
            paths: list[list[int]] = []
            sizes: list[int] = []
            latency = 0.0
            for i, node in enumerate(nodes):
                src, dst = self.cluster.nodes[node].name, self.cluster.nodes[nodes[(i + 1) % len(nodes)]].name
                ports = max(1, len(self._uplinks(src)))
                hop = [self.topology.path(src, dst, key=job.id * 64 + port) for port in range(ports)]
                latency = max(latency, max(self.topology.path_latency(path) for path in hop))
                paths.extend(hop)
                sizes.append(len(hop))
            flows = self.fabric.open(paths, None, run.refresh)
            start = 0
            for size in sizes:
                run.hops.append(flows[start:start + size])
                start += size
            run.ring = flows
            if len(flows) == len(run.hops) >= 2:
                run.read_ring = itemgetter(*flows)
            run.hop_latency = latency
            n, k = job.demand, len(nodes)
            share = 2 * (n - 1) / n if self.settings.algorithm == "ring" else 2 * (k - 1) / k
            run.per_hop = share * profile.gradient_bytes
        if settings.dataset_tier is not None and self.storage is not None:
            wants = [settings.dataset_rate * count for count in run.counts]
            paths = [self.storage.read_path(settings.dataset_tier, node) for node in nodes]
            flows = self.fabric.open(paths, wants, run.refresh)
            run.dataset = list(zip(flows, wants, strict=True))
            run.starved = settings.dataset_tier in self.storage.down
        if settings.checkpoint_tier is not None and self.storage is not None:
            self._schedule_checkpoint(run)
        if not run.ring and not run.dataset:
            self._refresh(run)  # else the fabric calls back once the streams have rates (this instant)

    def stopped(self, job: Job) -> None:
        """The job finished or failed: close its streams; its checkpoints go unless retained."""
        run = self._running.pop(job.id, None)
        if run is None:
            return
        run.epoch += 1
        self.fabric.close([flow for hop in run.hops for flow in hop] + [flow for flow, _ in run.dataset])
        run.hops, run.dataset, run.read_ring = [], [], None
        if run.writing is None:
            self._drop_stored(run)

    # --- speed -------------------------------------------------------------------------------------
    def _refresh(self, run: _Running) -> None:
        job = run.job
        if job.state is not JobState.RUNNING or self.sink is None:
            return
        if run.stalled or run.starved:
            run.quiet = None
            self._set_average(run, [], math.inf)
            self.sink.update_rate(job, 0.0, 0.0, 1.0)
            return
        rates = self.fabric.net.rates
        if self.fabric.net.pending and any(flow not in rates for flow in run.ring + [f for f, _ in run.dataset]):
            return  # streams opened at this instant: the fabric calls back once they have rates
        hop_rates: Sequence[float]
        if run.read_ring is not None:
            hop_rates = run.read_ring(rates)
        else:
            hop_rates = [rates[hop[0]] if len(hop) == 1 else sum(rates[flow] for flow in hop) for hop in run.hops]
        if run.quiet is not None and min(hop_rates) == run.quiet:
            return  # only hops faster than the slowest moved: nothing this job does changes
        speed, step = self._speed(run, hop_rates)
        self._set_average(run, hop_rates, step)
        run.quiet = None
        if run.hops and not run.dataset and len(run.ring) == len(run.hops) and 0 < step < math.inf \
                and run.per_hop / step <= min(hop_rates):
            run.quiet = min(hop_rates)
        self.sink.update_rate(job, *speed)

    def _speed(self, run: _Running, hop_rates: Sequence[float]) -> tuple[tuple[float, float, float], float]:
        """(speed factor, communication share, I/O share) of the job at these rates, and its step time."""
        exposed = (1 - self.settings.overlap) * self._comm(run, hop_rates) if self.topology is not None else 0.0
        compute_and_comm = run.profile.compute + exposed
        step = compute_and_comm
        rates = self.fabric.net.rates
        for flow, want in run.dataset:
            got = rates[flow]
            step = max(step, run.ideal_step * want / got if got > 0 else math.inf)
        if not math.isfinite(step):  # input starved
            return (0.0, 0.0, 1.0), step
        if step <= 0:  # nothing to compute or move: the quoted speed
            return (1.0, 0.0, 0.0), step
        return (run.ideal_step / step, exposed / step, (step - compute_and_comm) / step), step

    def _fixed_speed(self, job: Job, profile: JobProfile) -> tuple[float, float, float]:
        """The speed of a job with nothing on the fabric (one node, no dataset stream, no checkpoints):
        it depends on its accelerator, profile and size only, so it is worked out once for each."""
        key = (job.accelerator or "", profile, job.demand)
        speed = self._fixed_speeds.get(key)
        if speed is None:
            run = _Running(job, lambda: None, [job.demand], profile)
            run.ideal_step = profile.compute + (1 - self.settings.overlap) * self._ideal_comm(job, profile)
            speed = self._fixed_speeds[key] = self._speed(run, [])[0]
        return speed

    def _set_average(self, run: _Running, hop_rates: Sequence[float], step: float) -> None:
        """Ring streams send only while the job communicates: each hop moves its bytes once per step
        of `step` seconds (inf: the job is stalled and sends nothing), split over the hop's streams by
        their rates, and never more than a stream's rate."""
        if not run.hops:
            return
        averages: list[float] = []
        if not (step > 0 and math.isfinite(step)):
            averages = [0.0] * len(run.ring)
        elif run.read_ring is not None:  # one stream per hop: its rate is the hop's
            per_second = run.per_hop / step  # (x * rate / rate below: bit for bit the general formula)
            averages = [min(rate, per_second * rate / rate) if rate > 0 else 0.0 for rate in hop_rates]
        else:
            rates = self.fabric.net.rates
            per_second = run.per_hop / step
            for hop, hop_rate in zip(run.hops, hop_rates, strict=True):
                for flow in hop:
                    rate = rates[flow]
                    averages.append(min(rate, per_second * rate / hop_rate) if hop_rate > 0 else 0.0)
        if averages != run.averages:  # unchanged when only a hop that is not the slowest moved
            run.averages = averages
            self.fabric.set_average(run.ring, averages)

    def _comm(self, run: _Running, hop_rates: Sequence[float]) -> float:
        job = run.job
        bandwidth = self._intra(job)
        size = run.profile.gradient_bytes
        if not run.hops:
            return self._allreduce(job.demand, max(run.counts), 1, size, bandwidth, bandwidth, 0.0)
        return self._allreduce(job.demand, max(run.counts), len(run.counts), size, bandwidth, min(hop_rates),
                               run.hop_latency)

    def _ideal_comm(self, job: Job, profile: JobProfile) -> float:
        """All-reduce time of the fewest-nodes placement on an idle network (what quoted work assumes)."""
        if self.topology is None:  # no network model: the calibrated sync is in the job's base rate
            return 0.0
        size = self.cluster.max_node_size[job.accelerator]  # type: ignore[index]
        nodes = -(-job.demand // size)
        bandwidth = self._intra(job)
        if nodes == 1:
            return self._allreduce(job.demand, min(job.demand, size), 1, profile.gradient_bytes, bandwidth,
                                   bandwidth, 0.0)
        host = self.cluster.nodes[job.allocation[0][0]].name
        links = [self.topology.links[i] for i in self._uplinks(host)]
        rate = sum(link.bandwidth for link in links)
        latency = 2 * min(link.latency for link in links)
        return self._allreduce(job.demand, size, nodes, profile.gradient_bytes, bandwidth, rate, latency)

    def _allreduce(self, n: int, per_node: int, nodes: int, size: float, intra: float, inter: float,
                   latency: float) -> float:
        return allreduce_seconds(n, per_node, nodes, size, intra, inter, self.settings.algorithm,
                                 self.settings.intra_latency, latency)

    def _intra(self, job: Job) -> float:
        return self.intra_bandwidth[job.accelerator]  # type: ignore[index]

    def _uplinks(self, host: str) -> list[int]:
        links = self._host_uplinks.get(host)
        if links is None:
            assert self.topology is not None
            graph = self.topology.graph
            links = self._host_uplinks[host] = [data["index"] for _, _, data in graph.out_edges(host, data=True)]
        return links

    # --- checkpoints ---------------------------------------------------------------------------------
    def _schedule_checkpoint(self, run: _Running) -> None:
        interval = self.checkpoint_interval(run.job) if self.checkpoint_interval is not None \
            else self.settings.checkpoint_interval
        if 0 < interval < math.inf:
            event = self.env.timeout(interval)
            event.callbacks.append(partial(self._checkpoint, run, run.epoch))

    def _checkpoint(self, run: _Running, epoch: int, _event: simpy.Event) -> None:
        if epoch != run.epoch or run.job.state is not JobState.RUNNING:
            return
        assert self.storage is not None and self.settings.checkpoint_tier is not None
        tier = self.settings.checkpoint_tier
        if tier in self.storage.down:  # the tier has failed: this checkpoint is skipped
            self._schedule_checkpoint(run)
            return
        job = run.job
        total = run.profile.checkpoint_bytes
        shards = [(node, total * count / job.demand) for node, count in job.allocation]
        problem = self.storage.reserve(tier, shards)
        if problem is not None:
            self.on_storage_change()
            assert self.sink is not None
            self.sink.fail(job, problem)
            return
        paths = [self.storage.write_path(tier, node) for node, _ in shards]
        state = self.storage.tiers[tier]
        now = self.env.now  # the checkpoint holds the progress as of now (failures go back to it)
        job.pending_save = (now, max(0.0, job.remaining - job.rate * (now - job.progress_time)),
                            job.attained + (job.demand * (now - job.computing_since)
                                            if job.computing_since is not None else 0.0))
        run.writing = self.fabric.transfer(paths, [size for _, size in shards],
                                           partial(self._written, run, epoch, shards, now), latency=state.latency)
        self.on_storage_change()
        if self.settings.checkpoint_stall and run.writing is not None and run.job.state is JobState.RUNNING:
            run.stalled = True
            self._refresh(run)

    def _written(self, run: _Running, epoch: int, shards: list[tuple[int, float]], began: float) -> None:
        run.writing = None
        run.job.checkpoints += 1
        if epoch == run.epoch and run.job.state is JobState.RUNNING:
            job, now = run.job, self.env.now
            stalled = job.attained + job.demand * (now - job.computing_since) \
                if self.settings.checkpoint_stall and job.computing_since is not None else None
            Lifecycle.commit_checkpoint(job, stalled)
            run.job.checkpoint_time += self.env.now - began
        run.stored.append(shards)
        assert self.storage is not None and self.settings.checkpoint_tier is not None
        while len(run.stored) > self.settings.checkpoint_keep:
            self.storage.release(self.settings.checkpoint_tier, run.stored.popleft())
        if epoch != run.epoch:  # the job ended while this write was in flight
            self._drop_stored(run)
        else:
            if run.stalled:
                run.stalled = False
                self._refresh(run)
            self._schedule_checkpoint(run)
        self.on_storage_change()

    def _drop_stored(self, run: _Running) -> None:
        if self.settings.checkpoint_retain or self.storage is None or self.settings.checkpoint_tier is None:
            return
        while run.stored:
            self.storage.release(self.settings.checkpoint_tier, run.stored.popleft())
        self.on_storage_change()
