"""Build the network and storage side of a Model: topology, storage tiers, the flow fabric, the
training traffic model, and the meters of network and storage power.

Cluster nodes are the topology's hosts in node order (pool by pool). Link indexes: the topology's
directed links first, then each shared tier's read and write link, then each node-local tier's read
and write link per node (see engine/storage.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import simpy

from dcsim.build.placement_speed import model_parameters
from dcsim.calibration import Calibration
from dcsim.engine.fabric import Fabric
from dcsim.engine.levels import LevelBoard
from dcsim.engine.meters import FabricMeter
from dcsim.engine.storage import StorageSystem, TierState
from dcsim.engine.traffic import JobProfile, TrafficSettings, TrainingTraffic
from dcsim.errors import CalibrationError, CatalogError, ScenarioError
from dcsim.metrics.protocol import Recorder
from dcsim.model import Cluster, Job
from dcsim.model import topology as topo
from dcsim.scenario.network import Network
from dcsim.scenario.schema import Scenario


@dataclass
class NetworkModel:
    topology: topo.Topology | None
    fabric: Fabric
    storage: StorageSystem | None
    traffic: TrainingTraffic | None
    meter: FabricMeter
    largest_gang: dict[str, int]


def build_topology(network: Network, hosts: list[str], base_dir: str, source: str) -> topo.Topology:
    n = network
    if n.topology == "leaf_spine":
        assert n.host_bandwidth is not None
        return topo.leaf_spine(hosts, hosts_per_leaf=n.hosts_per_leaf, spines=n.spines,
                               host_bandwidth=n.host_bandwidth, oversubscription=n.oversubscription,
                               host_latency=n.host_latency, fabric_latency=n.fabric_latency)
    if n.topology == "fat_tree":
        assert n.host_bandwidth is not None
        return topo.fat_tree(hosts, hosts_per_leaf=n.hosts_per_leaf, leaves_per_pod=n.leaves_per_pod,
                             aggregations_per_pod=n.aggregations_per_pod, cores=n.cores,
                             host_bandwidth=n.host_bandwidth, oversubscription=n.oversubscription,
                             core_oversubscription=n.core_oversubscription, host_latency=n.host_latency,
                             fabric_latency=n.fabric_latency)
    if n.topology == "rail_optimized":
        assert n.rail_bandwidth is not None
        return topo.rail_optimized(hosts, rails=n.rails, rail_bandwidth=n.rail_bandwidth, spines=n.spines,
                                   oversubscription=n.oversubscription, hosts_per_pod=n.hosts_per_pod,
                                   host_latency=n.host_latency, fabric_latency=n.fabric_latency)
    if n.topology == "torus_3d":
        assert n.dims is not None and n.link_bandwidth is not None
        return topo.torus_3d(hosts, dims=(n.dims[0], n.dims[1], n.dims[2]), link_bandwidth=n.link_bandwidth,
                             latency=n.fabric_latency)
    assert n.file is not None
    path = Path(base_dir) / n.file
    if not path.is_file():
        raise ScenarioError([f"{source}: network.file: no such file {str(path)!r}"])
    reader = topo.from_edge_list if n.topology == "edge_list" else topo.from_graphml
    return reader(hosts, path, allow_partitions=n.allow_partitions)


def intra_node_bandwidth(scenario: Scenario, cluster: Cluster) -> dict[str, float]:
    """Bytes/s per accelerator and direction inside a node: the scenario's figure, else half the
    catalog's both-directions interconnect figure."""
    network = scenario.network
    result = {}
    for model in cluster.accelerator_models:
        if network is not None and network.intra_node_bandwidth is not None:
            result[model] = network.intra_node_bandwidth
            continue
        figure = cluster.specs[model].interconnect_bandwidth
        if figure is None:
            raise ScenarioError([f"{scenario.source}: network.intra_node_bandwidth: the catalog has no "
                                 f"interconnect figure for {model}; give one (e.g. 300GB/s)"])
        result[model] = figure.value / 2
    return result


class Profiles:
    """JobProfile per (model, accelerator, gang size), from the catalog and calibration, cached."""

    def __init__(self, scenario: Scenario, calibration: Calibration, cluster: Cluster,
                 speeds: Mapping[tuple[str, str], float]) -> None:
        spec = scenario.workload.training
        assert spec is not None
        self.spec = spec
        self.calibration = calibration
        self.cluster = cluster
        self.speeds = speeds
        self.source = scenario.source
        self.scenario = scenario
        self._cache: dict[tuple[str, str, int], JobProfile] = {}

    def parameters(self, model: str) -> float:
        params = model_parameters(self.scenario, model)
        if params is None:
            raise ScenarioError([f"{self.source}: workload.training.communication.parameters: model {model!r} has no "
                                 "parameter count in the catalog; give one (e.g. 25e6) to size its gradients and "
                                 "checkpoints"])
        return params

    def compute(self, model: str, accelerator: str, demand: int, batch: float | None = None,
                speed_key: str | None = None) -> float:
        """Compute seconds per step: the calibrated step time (measured networks, catalog LLMs by
        roofline), else the scenario's step_time on the reference accelerator scaled by speed."""
        seconds = None
        if model != "generic":
            size = self.cluster.max_node_size[accelerator]
            try:
                seconds = self.calibration.step_time(model, accelerator, demand, -(-demand // size), batch).compute
            except (CalibrationError, CatalogError, KeyError):
                seconds = None
        if seconds is not None and seconds > 0:
            return seconds
        step = self.spec.communication.step_time
        if step is None:
            raise ScenarioError([f"{self.source}: workload.training.communication.step_time: model {model!r} has no "
                                 "calibrated step time; give its compute seconds per step on the reference "
                                 "accelerator (e.g. 0.3s)"])
        return step / self.speeds[(speed_key or model, accelerator)]

    def __call__(self, job: Job) -> JobProfile:
        assert job.accelerator is not None
        key = (job.speed_key, job.accelerator, job.demand)
        profile = self._cache.get(key)
        if profile is None:
            params = self.parameters(job.model)
            checkpoint = self.spec.checkpoint
            profile = self._cache[key] = JobProfile(
                compute=self.compute(job.model, job.accelerator, job.demand, job.batch_size, job.speed_key),
                gradient_bytes=params * self.spec.communication.gradient_bytes,
                checkpoint_bytes=params * checkpoint.bytes_per_parameter if checkpoint is not None else 0.0)
        return profile


def build_network(scenario: Scenario, cluster: Cluster, calibration: Calibration,
                  speeds: Mapping[tuple[str, str], float], env: simpy.Environment, recorder: Recorder,
                  levels: LevelBoard, jobs: list[Job]) -> NetworkModel | None:
    network, storage_spec = scenario.network, scenario.storage
    if network is None and storage_spec is None:
        return None
    hosts = [node.name for node in cluster.nodes]
    topology = build_topology(network, hosts, scenario.base_dir, scenario.source) if network is not None else None
    if topology is not None:
        groups = topology.host_groups()
        cluster.groups = tuple(groups.get(name, ()) for name in hosts)
    tiers, capacities = _tiers(scenario, topology, len(hosts))
    network_links = len(topology.links) if topology is not None else 0
    fabric = Fabric(env, capacities, recorder, recorded_links=network_links)
    storage = StorageSystem(tiers, topology, hosts) if tiers else None
    if topology is not None:
        recorder.network_links([(link.index, link.source, link.target, link.tier, link.bandwidth)
                                for link in topology.links])
    fixed_w = 0.0
    pj = 0.0
    if topology is not None and network is not None:
        kinds = topology.graph.nodes
        switches = sum(1 for _, data in kinds(data=True) if data.get("kind") == "switch")
        ports = sum(1 for link in topology.links if kinds[link.source].get("kind") == "switch")
        nics = sum(1 for link in topology.links if kinds[link.source].get("kind") == "host")
        fixed_w = switches * network.power.switch_idle + ports * network.power.port + nics * network.power.nic
        pj = network.power.pj_per_bit
    meter = FabricMeter(fabric, storage, levels, recorder, network_links=network_links, network_fixed_w=fixed_w,
                        network_pj_per_bit=pj)
    fabric.on_change = meter.update
    traffic = None
    spec = scenario.workload.training
    if spec is not None and jobs:
        profiles = Profiles(scenario, calibration, cluster, speeds)
        if topology is not None or (spec.checkpoint is not None and spec.checkpoint.tier is not None):
            for key, model, batch in sorted({(job.speed_key, job.model, job.batch_size or 0.0) for job in jobs}):
                profiles.parameters(model)  # fail now, not mid-run, on a model without a parameter count
                if topology is not None:
                    for accelerator in cluster.accelerator_models:
                        profiles.compute(model, accelerator, 1, batch or None, key)
        settings = TrafficSettings(
            algorithm=spec.communication.algorithm, overlap=spec.communication.overlap,
            dataset_tier=spec.dataset.tier if spec.dataset is not None else None,
            dataset_rate=spec.dataset.rate if spec.dataset is not None else 0.0,
            checkpoint_tier=spec.checkpoint.tier if spec.checkpoint is not None else None,
            checkpoint_interval=float(spec.checkpoint.interval) if spec.checkpoint is not None
            and spec.checkpoint.interval is not None else float("inf"),
            checkpoint_stall=spec.checkpoint.mode == "stall" if spec.checkpoint is not None else True,
            checkpoint_keep=spec.checkpoint.keep if spec.checkpoint is not None else 1,
            checkpoint_retain=spec.checkpoint.retain_after_completion if spec.checkpoint is not None else False,
            intra_latency=network.intra_node_latency if network is not None else 1e-6)
        traffic = TrainingTraffic(env, fabric, cluster, topology, storage, profiles,
                                  intra_node_bandwidth(scenario, cluster) if topology is not None else {}, settings)
        traffic.on_storage_change = meter.update
    return NetworkModel(topology, fabric, storage, traffic, meter, largest_gang(topology, cluster))


def _tiers(scenario: Scenario, topology: topo.Topology | None, nodes: int) -> tuple[list[TierState], list[float]]:
    """Storage tiers (shared ones attached to the topology) and every link's capacity: the
    topology's links, then each tier's read links and write links (one per node if node-local)."""
    specs = scenario.storage.tiers if scenario.storage is not None else []
    latency = scenario.network.host_latency if scenario.network is not None else 0.0
    attached: list[str | None] = []
    for index, spec in enumerate(specs):  # attach first: it adds links to the topology
        attached.append(None)
        if spec.kind != "node_local" and topology is not None:
            attached[-1] = f"storage:{spec.name}"
            topology.attach(f"storage:{spec.name}", spec.attach, max(spec.read_bandwidth, spec.write_bandwidth),
                            latency, source=f"{scenario.source}: storage.tiers.{index}.attach")
    capacities = [link.bandwidth for link in topology.links] if topology is not None else []
    tiers: list[TierState] = []
    for spec, attach in zip(specs, attached, strict=True):
        copies = nodes if spec.kind == "node_local" else 1
        reads = list(range(len(capacities), len(capacities) + copies))
        writes = list(range(len(capacities) + copies, len(capacities) + 2 * copies))
        capacities.extend([spec.read_bandwidth] * copies + [spec.write_bandwidth] * copies)
        tiers.append(TierState(spec.name, spec.kind, spec.capacity, [spec.used] * copies, reads, writes,
                               spec.latency, attach, spec.power_per_tb, spec.pj_per_bit))
    return tiers, capacities


def largest_gang(topology: topo.Topology | None, cluster: Cluster) -> dict[str, int]:
    """Per accelerator model, the most accelerators one job can get: those of the largest connected
    partition of the network (the whole cluster when it is connected)."""
    if topology is None or len(topology.partitions()) <= 1:
        return dict(cluster.capacity)
    by_name = {node.name: node for node in cluster.nodes}
    best = dict.fromkeys(cluster.accelerator_models, 0)
    for part in topology.partitions():
        totals = dict.fromkeys(cluster.accelerator_models, 0)
        for name in part:
            totals[by_name[name].accelerator] += by_name[name].size
        for model, total in totals.items():
            best[model] = max(best[model], total)
    return best


def weight_loader(model: NetworkModel) -> Callable[[str, int, float, Callable[[], None]], None] | None:
    """Loads a replica's weights from a tier over the network (a transfer sharing bandwidth)."""
    storage = model.storage
    if storage is None:
        return None

    def load(tier: str, node_id: int, size: float, done: Callable[[], None]) -> None:
        state = storage.tiers[tier]
        model.fabric.transfer([storage.read_path(tier, node_id)], [size], done, latency=state.latency)

    return load
