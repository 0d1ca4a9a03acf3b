"""Scenario sections for the network (topology, link power) and storage (tiers), and the training
workload's traffic: gradient all-reduce, dataset streaming and checkpoints.

All three are optional: without `network` a job's synchronisation comes from the calibration model;
without `storage` there is no dataset streaming, no checkpointing, and inference cold start uses the
service's `weights_load_bandwidth`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dcsim.errors import clip
from dcsim.scenario.base import Strict
from dcsim.scenario.units_types import Bandwidth, ByteCount, Bytes, Duration, Interval, PositiveDuration, Power

_SWITCHES = 100_000  # most switches (or hosts) per tier: beyond any built network
_PJ_PER_BIT = 1e6  # switching energy per bit: today's figures are 1 to 100 pJ

TopologyKind = Literal["leaf_spine", "fat_tree", "rail_optimized", "torus_3d", "edge_list", "graphml"]

_NEEDS: dict[str, tuple[str, ...]] = {
    "leaf_spine": ("host_bandwidth",),
    "fat_tree": ("host_bandwidth",),
    "rail_optimized": ("rail_bandwidth",),
    "torus_3d": ("dims", "link_bandwidth"),
    "edge_list": ("file",),
    "graphml": ("file",),
}


class NetworkPower(Strict):
    """Switch and NIC power: a fixed part plus a part proportional to the traffic carried."""

    switch_idle: Power = Field(0.0, description="watts per switch, drawn whether or not it carries traffic")
    port: Power = Field(0.0, description="watts per switch port in use (one per link end at a switch)")
    nic: Power = Field(0.0, description="watts per host network interface (one per cluster node)")
    pj_per_bit: float = Field(0.0, ge=0, le=_PJ_PER_BIT,
                              description="picojoules per bit per link traversed (switching energy)")


class Network(Strict):
    """The scale-out network between cluster nodes (in node order: pool by pool, index by index)."""

    topology: TopologyKind
    host_bandwidth: Bandwidth | None = Field(None, description="each node's link to its leaf (leaf_spine, fat_tree)")
    hosts_per_leaf: int = Field(16, ge=1, le=_SWITCHES)
    spines: int = Field(4, ge=1, le=_SWITCHES, description="spine switches (leaf_spine, rail_optimized)")
    leaves_per_pod: int = Field(8, ge=1, le=_SWITCHES, description="fat_tree")
    aggregations_per_pod: int = Field(4, ge=1, le=_SWITCHES, description="fat_tree")
    cores: int = Field(4, ge=1, le=_SWITCHES, description="fat_tree")
    oversubscription: float = Field(1.0, ge=1.0, le=1000, description="host bandwidth into a leaf / the leaf's uplinks")
    core_oversubscription: float = Field(1.0, ge=1.0, le=1000, description="fat_tree: a pod's downlinks / its uplinks")
    rails: int = Field(8, ge=1, le=1024, description="rail_optimized: NICs per node, one rail switch each")
    rail_bandwidth: Bandwidth | None = Field(None, description="rail_optimized: bandwidth of each NIC")
    hosts_per_pod: int | None = Field(None, ge=1, le=10**7, description="rail_optimized: nodes per pod (default: all)")
    dims: list[Annotated[int, Field(ge=1, le=1000)]] | None = Field(
        None, min_length=3, max_length=3, description="torus_3d: [x, y, z], product = number of nodes")
    link_bandwidth: Bandwidth | None = Field(None, description="torus_3d: each neighbour link")
    file: str | None = Field(None, description="edge_list or graphml file, relative to the scenario file")
    allow_partitions: bool = Field(False, description="edge_list/graphml: accept islands of nodes; jobs stay "
                                                     "inside one (needs the topology_aware placement)")
    host_latency: Duration = Field(1e-6, description="latency of a node's link to its switch")
    fabric_latency: Duration = Field(1e-6, description="latency of a switch-to-switch link")
    intra_node_latency: Duration = Field(1e-6, description="latency of one hop inside a node (NVLink, PCIe)")
    intra_node_bandwidth: Bandwidth | None = Field(
        None, description="per-accelerator bandwidth inside a node; default: the catalog's interconnect figure")
    power: NetworkPower = NetworkPower()

    @model_validator(mode="after")
    def _has_what_the_topology_needs(self) -> Network:
        missing = [name for name in _NEEDS[self.topology] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"topology {self.topology} needs {', '.join(missing)}")
        if self.allow_partitions and self.topology not in ("edge_list", "graphml"):
            raise ValueError("allow_partitions applies to edge_list and graphml topologies only")
        return self


class StorageTier(Strict):
    """A storage system with capacity and read/write bandwidth. Shared tiers sit on the network
    (attached to `attach` switches, default the top tier); node_local figures are per node."""

    name: str = Field(min_length=1)
    kind: Literal["parallel_fs", "object_store", "node_local"]
    capacity: Bytes
    used: ByteCount = Field(0.0, description="bytes already stored at the start (datasets, other data)")
    read_bandwidth: Bandwidth
    write_bandwidth: Bandwidth
    latency: Duration = Field(0.0, description="added once to every transfer (object stores: tens of ms)")
    attach: list[str] | None = Field(None, description="switches the tier connects to; default: the top tier")
    power_per_tb: Power = Field(0.0, description="watts per TB of capacity (drives, controllers)")
    pj_per_bit: float = Field(0.0, ge=0, le=_PJ_PER_BIT, description="picojoules per bit read or written")

    @model_validator(mode="after")
    def _fits(self) -> StorageTier:
        if self.used > self.capacity:
            raise ValueError(f"used ({self.used:.3g} B) exceeds capacity ({self.capacity:.3g} B)")
        if self.kind == "node_local" and self.attach is not None:
            raise ValueError("a node_local tier sits in every node; it takes no attach")
        return self


class Storage(Strict):
    tiers: list[StorageTier] = Field(min_length=1)

    @field_validator("tiers")
    @classmethod
    def _unique(cls, tiers: list[StorageTier]) -> list[StorageTier]:
        names = [tier.name for tier in tiers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"tier names must be unique, got {clip(', '.join(duplicates))} twice")
        return tiers


class Communication(Strict):
    """Gradient all-reduce of data-parallel jobs (used when the scenario has a network)."""

    algorithm: Literal["ring", "hierarchical"] = Field(
        "ring", description="ring over all accelerators, or reduce inside nodes then ring across nodes")
    overlap: float = Field(0.0, ge=0, le=1, description="fraction of communication hidden behind compute")
    gradient_bytes: float = Field(2.0, gt=0, le=16, description="bytes per gradient element (2 = fp16/bf16)")
    parameters: float | None = Field(None, gt=0, le=1e15, description="parameters of jobs whose model has no count in "
                                                             "the catalog (e.g. the generic model)")
    step_time: PositiveDuration | None = Field(
        None, description="compute seconds per step on the reference accelerator, for models without a "
                          "calibrated step time")


class DatasetStreaming(Strict):
    """Training input read from a storage tier while the job computes; too little bandwidth slows it."""

    tier: str
    rate: Bandwidth = Field(description="bytes/s each accelerator consumes at full speed")


class Checkpointing(Strict):
    """Periodic checkpoints of training jobs: written to a storage tier through the network (`tier`),
    or, without one, taking `save_time` (or the job's checkpoint size over `write_bandwidth`).
    `policy: fixed` writes one every `interval` seconds of running; `policy: young_daly` picks, per job,
    the optimum for its own failure rate (scenario section `failures`) and checkpoint cost."""

    tier: str | None = Field(None, description="storage tier written to; none: save_time / write_bandwidth")
    policy: Literal["fixed", "young_daly"] = Field("fixed", description="fixed interval, or Young/Daly's per job")
    interval: Interval | None = Field(None, description="seconds of running between checkpoints (policy fixed)")
    mode: Literal["stall", "overlap"] = Field("stall", description="stall: the job waits for the write")
    slowdown: float = Field(0.0, ge=0, le=1, description="overlap: share of speed lost while a write runs")
    save_time: Duration | None = Field(None, description="without a tier: seconds one checkpoint takes")
    write_bandwidth: Bandwidth | None = Field(
        None, description="without a tier or save_time: the job's checkpoint size (suspension or trace) over this")
    bytes_per_parameter: float = Field(
        14.0, gt=0, le=1000,
        description="checkpoint bytes per parameter (14 = bf16 weights, fp32 master copy, Adam moments)")
    keep: int = Field(1, ge=1, le=1_000_000, description="checkpoints kept per job; older ones are deleted")
    retain_after_completion: bool = Field(False, description="keep a finished job's checkpoints on the tier")

    @model_validator(mode="after")
    def _cost(self) -> Checkpointing:
        if self.tier is not None and (self.save_time is not None or self.write_bandwidth is not None):
            raise ValueError("save_time and write_bandwidth are for checkpoints without a tier (the tier's "
                             "bandwidth sets the time)")
        if self.policy == "fixed" and self.interval is None:
            raise ValueError("give an interval (or policy: young_daly)")
        if self.policy == "young_daly" and self.interval is not None:
            raise ValueError("interval is for policy fixed; young_daly computes one per job")
        if self.interval is not None and self.save_time is not None and self.interval < self.save_time:
            raise ValueError(f"interval ({self.interval:g} s) is shorter than the save time ({self.save_time:g} s)")
        return self


class TrainingTraffic(Strict):
    communication: Communication = Communication()
    dataset: DatasetStreaming | None = None
    checkpoint: Checkpointing | None = None
