"""The cluster of a scenario and its power: nodes from the node pools, power caps, busy draw.

Shared by the training build (build/model.py) and the serving build (build/serving.py), which
both need the cluster and its busy power; kept apart so neither imports the other.
"""

from __future__ import annotations

from dcsim.calibration import Calibration
from dcsim.errors import ScenarioError
from dcsim.model import Cluster, Node
from dcsim.scenario.accelerators import scenario_catalog
from dcsim.scenario.schema import Scenario


def build_cluster(scenario: Scenario) -> Cluster:
    catalog = scenario_catalog(scenario)
    nodes: list[Node] = []
    specs = {}
    for pool in scenario.cluster.node_pools:
        model = catalog.canonical_accelerator(pool.accelerator)
        specs[model] = catalog.accelerators[model]
        for index in range(pool.count):
            nodes.append(Node(id=len(nodes), name=f"{pool.name}-{index}", pool=pool.name, accelerator=model,
                              size=pool.accelerators_per_node, host_idle_w=pool.host_power.idle,
                              host_busy_w=pool.host_power.busy_w))
    return Cluster(nodes, specs)



def power_caps(scenario: Scenario) -> dict[str, float]:
    """Power cap per accelerator model; pools sharing a model must share its cap (speeds are per model)."""
    catalog = scenario_catalog(scenario)
    caps: dict[str, float | None] = {}
    for index, pool in enumerate(scenario.cluster.node_pools):
        model = catalog.canonical_accelerator(pool.accelerator)
        if model in caps and caps[model] != pool.power_cap:
            raise ScenarioError([f"{scenario.source}: cluster.node_pools.{index}.power_cap: pools of {model} must "
                                 f"share one power cap, got {pool.power_cap} and {caps[model]}"])
        caps[model] = pool.power_cap
    return {model: cap for model, cap in caps.items() if cap is not None}


def uncapped_busy_power(scenario: Scenario, cluster: Cluster, calibration: Calibration) -> dict[str, float]:
    """Watts per computing accelerator without a cap: the scenario's TDP fraction if given, else the
    calibrated training power where the catalog has one, else TDP."""
    fraction = scenario.energy.busy_power_fraction
    watts: dict[str, float] = {}
    for model in cluster.accelerator_models:
        calibrated = None if fraction is not None else calibration.power.training_power(model)
        watts[model] = calibrated if calibrated is not None else cluster.specs[model].tdp_w.value * (fraction or 1.0)
    return watts


def busy_power(scenario: Scenario, cluster: Cluster, calibration: Calibration,
               caps: dict[str, float]) -> dict[str, float]:
    """Busy watts per accelerator under the power caps (the calibrated capped draw where fitted)."""
    watts = uncapped_busy_power(scenario, cluster, calibration)
    for model, cap in caps.items():
        fitted = calibration.power.training_power(model, cap) if scenario.energy.busy_power_fraction is None else None
        watts[model] = fitted if fitted is not None else min(watts[model], cap)
    return watts
