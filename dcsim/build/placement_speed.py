"""How fast a multi-accelerator training job runs for its accelerator count and placement, when the
scenario has no network model (with one, the all-reduce flows of engine/traffic.py set these costs).

Inside one node the synchronisation is the calibrated one (measured NVLink/PCIe rings). Across nodes
it is that same calibrated step plus what the job's own collective traffic loses on the cluster's
scale-out links (issue 15): the ring all-reduce of parameters x `communication.gradient_bytes` over
the NIC bandwidth per accelerator (the node pool's `network_bandwidth`, else the catalog's) times the
accelerators the job has on a node, minus the same ring inside one node; latency is left out
(microseconds per hop against megabytes of gradient). Adding the analytic difference to the measured
step keeps the measured efficiency of the framework's all-reduce, so spreading never speeds a job up.
Where the model has no parameter count or the accelerator no NIC figure, the calibrated inter-node
fit stays: it was measured on the source's own network; `spread_sources` says which pairs used it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dcsim.calibration import Calibration
from dcsim.engine.collectives import allreduce_seconds
from dcsim.errors import CatalogError
from dcsim.model import Cluster
from dcsim.scenario.accelerators import scenario_catalog
from dcsim.scenario.schema import Scenario


@dataclass(frozen=True)
class NicCollectives:
    """Inter-node all-reduce seconds from parameters and NIC bandwidth (None where either is unknown)."""

    gradient_bytes: Callable[[str], float | None]  # model -> bytes per all-reduce
    nic: Mapping[str, float]  # accelerator -> scale-out bytes/s per accelerator, one direction
    intra: Mapping[str, float]  # accelerator -> intra-node bytes/s per accelerator, one direction
    algorithm: str = "ring"
    overlap: float = 0.0  # share of communication hidden behind compute

    def extra_seconds(self, model: str, accelerator: str, count: int, nodes: int,
                      network_of: str | None = None) -> float | None:
        """What crossing nodes adds to one all-reduce against the same ring inside one node, on the
        scale-out network of `network_of` (default: the accelerator's own)."""
        size = self.gradient_bytes(model)
        nic, intra = self.nic.get(network_of or accelerator), self.intra.get(accelerator)
        if size is None or nic is None or intra is None or nodes <= 1:
            return None
        per_node = -(-count // nodes)
        spread = allreduce_seconds(count, per_node, nodes, size, intra, nic * per_node, self.algorithm)
        inside = allreduce_seconds(count, count, 1, size, intra, intra, self.algorithm)
        return (1.0 - self.overlap) * max(spread - inside, 0.0)


class PlacementSpeed:
    """Speed of a multi-accelerator job relative to the speeds table (one-accelerator ratios), by its
    accelerator count and placement.

    - Count: a job's work is quoted on `demand` reference accelerators, so its speed on another model
      is step(reference, demand) / step(accelerator, demand), compute plus the synchronisation of that
      many accelerators (at the model's median measured batch), not the one-accelerator ratio. Against
      Gavel's multi-GPU measurements this cuts the median error of P100 and K80 speed ratios from 21%
      and 39% to 8% and 12% (docs/calibration.md).
    - Spread: a job on more nodes than it needs is slower by step(fewest nodes) / step(its nodes).
    Cached per shape."""

    def __init__(self, calibration: Calibration, cluster: Cluster, reference: str,
                 collectives: NicCollectives | None = None) -> None:
        self.calibration = calibration
        self.reference = reference
        self.collectives = collectives
        self.largest = dict(cluster.max_node_size)
        self.cache: dict[tuple[str, str, int, int], float] = {}
        self.spread_sources: dict[tuple[str, str], str] = {}  # (model, accelerator) -> "network" | "calibrated"

    def __call__(self, model: str, accelerator: str, demand: int, nodes: int) -> float:
        if model not in self.calibration.training.models:
            return 1.0
        key = (model, accelerator, demand, nodes)
        factor = self.cache.get(key)
        if factor is None:
            factor = self.cache[key] = self._count(model, accelerator, demand) * self._spread(
                model, accelerator, demand, nodes)
        return factor

    def step(self, model: str, accelerator: str, count: int, nodes: int, network_of: str | None = None) -> float:
        """Seconds per step. Across nodes with known parameters and NICs: the calibrated step of the same
        count inside one node (measured synchronisation efficiency) plus what the slower inter-node links
        (of `network_of`'s nodes, default the accelerator's) add to the all-reduce; otherwise the
        calibrated inter-node fit."""
        if nodes <= 1 or count <= 1:
            return self.calibration.step_time(model, accelerator, count, nodes).total
        extra = (self.collectives.extra_seconds(model, accelerator, count, nodes, network_of)
                 if self.collectives else None)
        if network_of is None and accelerator in self.largest:
            self.spread_sources[(model, accelerator)] = "calibrated" if extra is None else "network"
        if extra is None:
            return self.calibration.step_time(model, accelerator, count, nodes).total
        return self.calibration.step_time(model, accelerator, count, 1).total + extra

    def _fewest(self, accelerator: str, demand: int) -> int:
        return -(-demand // self.largest[accelerator])

    def _count(self, model: str, accelerator: str, demand: int) -> float:
        if demand <= 1 or accelerator == self.reference:
            return 1.0
        nodes = self._fewest(accelerator, demand)
        # The reference runs on this cluster's network: the factor compares accelerators, not networks.
        at_count = self.step(model, self.reference, demand, nodes, network_of=accelerator) / self.step(
            model, accelerator, demand, nodes)
        one = self.calibration.step_time(model, self.reference).total / self.calibration.step_time(
            model, accelerator).total
        return at_count / one

    def _spread(self, model: str, accelerator: str, demand: int, nodes: int) -> float:
        fewest = self._fewest(accelerator, demand)
        if nodes <= fewest:
            return 1.0
        return self.step(model, accelerator, demand, fewest) / self.step(model, accelerator, demand, nodes)


def nic_bandwidths(cluster: Cluster, pool_figures: Mapping[str, float]) -> dict[str, float]:
    """Scale-out bytes/s per accelerator and direction by accelerator model: the slowest pool's figure
    where pools give one, else the catalog's; models with neither are left out."""
    result: dict[str, float] = {}
    for node in cluster.nodes:
        figure = pool_figures.get(node.pool)
        if figure is None:
            catalog = cluster.specs[node.accelerator].network_bandwidth
            figure = catalog.value if catalog is not None else None
        if figure is not None:
            result[node.accelerator] = min(result.get(node.accelerator, math.inf), figure)
    return result


def model_parameters(scenario: Scenario, model: str) -> float | None:
    """The model's parameter count: the catalog's, else the scenario's `communication.parameters`."""
    try:
        params = scenario_catalog(scenario).model(model).params
    except CatalogError:  # not a catalog model (e.g. generic)
        params = None
    spec = scenario.workload.training
    if params is None and spec is not None:
        params = spec.communication.parameters
    return params


def nic_collectives(scenario: Scenario, cluster: Cluster) -> NicCollectives | None:
    """The no-network inter-node all-reduce model of a scenario's training workload."""
    spec = scenario.workload.training
    if spec is None:
        return None
    pools = {pool.name: pool.network_bandwidth for pool in scenario.cluster.node_pools
             if pool.network_bandwidth is not None}
    catalog = scenario_catalog(scenario)
    reference = catalog.canonical_accelerator(spec.reference_accelerator or catalog.reference_accelerator)
    specs = {**{reference: catalog.accelerator(reference)}, **cluster.specs}
    intra = {model: figure.value / 2 for model, accelerator in specs.items()
             if (figure := accelerator.interconnect_bandwidth) is not None}
    bytes_per_gradient = spec.communication.gradient_bytes

    def gradient_bytes(model: str) -> float | None:
        params = model_parameters(scenario, model)
        return None if params is None else params * bytes_per_gradient

    return NicCollectives(gradient_bytes, nic_bandwidths(cluster, pools), intra,
                          spec.communication.algorithm, spec.communication.overlap)
