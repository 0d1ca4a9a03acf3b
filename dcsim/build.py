"""Build a runnable Model from a Scenario: cluster, jobs, bound policies, recorder.

The only place besides dcsim.policies that names concrete policies (through the registry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import simpy

from dcsim.catalog import load_catalog
from dcsim.engine.rng import stream
from dcsim.engine.simulation import Simulation
from dcsim.engine.training import TrainingEngine
from dcsim.errors import DcsimError, PolicyError
from dcsim.metrics.recorder import FrameRecorder
from dcsim.model import Cluster, Job, Node
from dcsim.model.power import PowerCoefficients
from dcsim.policies import registry
from dcsim.scenario.schema import Scenario, SyntheticTraining
from dcsim.workload import WorkloadReport, generate, read_trace


@dataclass
class Model:
    scenario: Scenario
    seed: int
    cluster: Cluster
    jobs: list[Job]
    workload: WorkloadReport | None
    recorder: FrameRecorder  # holds the power coefficients it applies to level rows
    simulation: Simulation
    policies: dict[str, dict[str, object]]


def build_cluster(scenario: Scenario) -> Cluster:
    catalog = load_catalog()
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


def build_jobs(scenario: Scenario, seed: int) -> tuple[list[Job], WorkloadReport | None]:
    spec = scenario.workload.training
    if spec is None:
        return [], None
    catalog = load_catalog()

    def streams(name: str) -> object:
        return stream(seed, f"training.{name}")

    if isinstance(spec, SyntheticTraining):
        return generate(spec, streams, catalog.canonical_accelerator)  # type: ignore[arg-type]
    return read_trace(spec, scenario.base_dir, streams, catalog.canonical_accelerator,  # type: ignore[arg-type]
                      set(catalog.model_types()))


def build_policy(scenario: Scenario, family: str) -> Any:
    """Instantiate the scenario's policy of `family`; errors name the scenario field."""
    spec = getattr(scenario.policies, family)
    try:
        return registry.build(family, spec.name, spec.params)
    except PolicyError as exc:
        raise PolicyError(f"{scenario.source}: policies.{family}: {exc}") from None


def policy_problems(scenario: Scenario) -> list[str]:
    """Unknown policy names or bad parameters, as `dcsim validate` reports them (file prefix included)."""
    problems = []
    for family in registry.FAMILIES:
        try:
            build_policy(scenario, family)
        except PolicyError as exc:
            problems.append(str(exc))
    return problems


def build_model(scenario: Scenario, seed: int | None = None) -> Model:
    seed = scenario.seed if seed is None else seed
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DcsimError(f"seed: expected an integer >= 0, got {seed!r}")
    catalog = load_catalog()
    cluster = build_cluster(scenario)
    jobs, report = build_jobs(scenario, seed)
    scheduler = build_policy(scenario, "scheduler")
    placement = build_policy(scenario, "placement")
    power = PowerCoefficients.of(cluster, scenario.energy.busy_power_fraction)
    recorder = FrameRecorder(cluster.accelerator_models, power, scenario.energy.pue)
    env = simpy.Environment()
    # The training engine also records the cluster's levels and power, so it runs even with no jobs:
    # an idle cluster still draws idle power until the horizon.
    spec = scenario.workload.training
    reference = catalog.canonical_accelerator(
        (spec.reference_accelerator if spec is not None else None) or catalog.reference_accelerator)
    speeds = {}
    for model in {job.model for job in jobs}:
        base = catalog.relative_speed(model, reference)
        for accelerator in cluster.accelerator_models:
            speeds[(model, accelerator)] = catalog.relative_speed(model, accelerator) / base
    training = TrainingEngine(env, cluster, jobs, scheduler, placement, speeds, recorder,
                              startup=spec.startup if spec is not None else 0.0)
    simulation = Simulation(env, training, scenario.horizon)
    policies = {
        "scheduler": {"name": scheduler.name, "params": scheduler.get_params()},
        "placement": {"name": placement.name, "params": placement.get_params()},
    }
    return Model(scenario, seed, cluster, jobs, report, recorder, simulation, policies)
