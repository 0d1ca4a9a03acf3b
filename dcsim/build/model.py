"""Build a runnable Model from a Scenario: cluster, jobs, bound policies, recorder.

This module wires the subsystems together (training, network and storage, serving): their parts
call into each other at run time (freed capacity, traffic sinks), so the wiring stays explicit
here. The cluster and its power come from build/cluster.py, policies from build/policies.py (the
registry), the network side from build/network.py and the inference side from build/serving.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import simpy

from dcsim.build.cluster import build_cluster, busy_power, power_caps, uncapped_busy_power
from dcsim.build.disaggregation import wire_network
from dcsim.build.failures import build_checkpoints, build_failures, wire_tier_checkpoints
from dcsim.build.feasibility import restrict_to_memory
from dcsim.build.placement_speed import PlacementSpeed, nic_collectives
from dcsim.build.policies import build_policy
from dcsim.build.serving import Serving, build_serving
from dcsim.energy.loading import EnergyInputs, energy_inputs
from dcsim.engine.levels import LevelBoard
from dcsim.engine.lifecycle import Lifecycle, SuspensionCosts
from dcsim.engine.rng import stream
from dcsim.engine.serving_failures import ReplicaLosses
from dcsim.engine.simulation import Simulation
from dcsim.engine.training import TrainingEngine
from dcsim.errors import DcsimError, ScenarioError
from dcsim.metrics.recorder import FrameRecorder
from dcsim.model import Cluster, Job
from dcsim.model.power import PowerCoefficients
from dcsim.scenario.accelerators import scenario_calibration, scenario_catalog
from dcsim.scenario.schema import Scenario, SyntheticTraining
from dcsim.workload import WorkloadReport, generate, read_trace

if TYPE_CHECKING:
    from dcsim.build.network import NetworkModel
    from dcsim.engine.failures import FailureProcess
    from dcsim.engine.power import PowerGovernor


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
    serving: Serving | None = None
    network: NetworkModel | None = None
    failures: FailureProcess | None = None
    energy: EnergyInputs | None = None  # series of the energy section, when it uses any (dcsim/energy/)
    power: PowerGovernor | None = None  # a power policy's governor (engine/power.py); None without one


def build_jobs(scenario: Scenario, seed: int) -> tuple[list[Job], WorkloadReport | None]:
    spec = scenario.workload.training
    if spec is None:
        return [], None
    catalog = scenario_catalog(scenario)

    def streams(name: str) -> object:
        return stream(seed, f"training.{name}")

    if isinstance(spec, SyntheticTraining):
        return generate(spec, streams, catalog.canonical_accelerator)  # type: ignore[arg-type]
    models = set(scenario_calibration(scenario).model_types())
    return read_trace(spec, scenario.base_dir, streams, catalog.canonical_accelerator,  # type: ignore[arg-type]
                      models)


def _lifecycle(spec: object, jobs: list[Job], startup: float, recorder: FrameRecorder) -> Lifecycle:
    """Suspension costs from the workload's `suspension` section; each job gets its checkpoint size."""
    suspension = getattr(spec, "suspension", None)
    if suspension is None:
        return Lifecycle(startup, segment=recorder.job_segment)
    for job in jobs:
        if job.checkpoint_bytes is None:  # a trace may give it per job
            job.checkpoint_bytes = suspension.size_of(job.model)
    costs = SuspensionCosts(
        write_bps=suspension.write_bandwidth or math.inf, read_bps=suspension.read_bandwidth or math.inf,
        restart_delay=startup if suspension.restart_delay is None else suspension.restart_delay)
    return Lifecycle(startup, costs, segment=recorder.job_segment)


def _quotas(spec: object) -> dict[str, int]:
    tenancy = getattr(spec, "tenancy", None)
    return {name: tenant.quota for name, tenant in tenancy.tenants.items()} if tenancy is not None else {}


def build_model(scenario: Scenario, seed: int | None = None) -> Model:
    seed = scenario.seed if seed is None else seed
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DcsimError(f"seed: expected an integer >= 0, got {seed!r}")
    catalog = scenario_catalog(scenario)
    calibration = scenario_calibration(scenario)
    energy = (energy_inputs(scenario.energy, scenario.base_dir, scenario.horizon)  # bad series: exit 2 before running
              if scenario.energy.uses_series else None)
    cluster = build_cluster(scenario)
    jobs, report = build_jobs(scenario, seed)
    restrict_to_memory(jobs, cluster, calibration)
    scheduler = build_policy(scenario, "scheduler")
    placement = build_policy(scenario, "placement")
    caps = power_caps(scenario)
    uncapped = uncapped_busy_power(scenario, cluster, calibration)
    power = PowerCoefficients.of(cluster, busy_power(scenario, cluster, calibration, caps))
    recorder = FrameRecorder(cluster.accelerator_models, power, scenario.energy.pue)
    env = simpy.Environment()
    # The training engine also records the cluster's levels and power, so it runs even with no jobs:
    # an idle cluster still draws idle power until the horizon.
    spec = scenario.workload.training
    reference = catalog.canonical_accelerator(
        (spec.reference_accelerator if spec is not None else None) or catalog.reference_accelerator)
    speeds = {}
    for key, model, batch in {(job.speed_key, job.model, job.batch_size) for job in jobs}:
        base = calibration.relative_speed(model, reference, batch)
        for accelerator in cluster.accelerator_models:
            slowdown = (calibration.power.cap_slowdown(accelerator, caps[accelerator], uncapped[accelerator])
                        if accelerator in caps else 1.0)
            speeds[(key, accelerator)] = calibration.relative_speed(model, accelerator, batch) / base / slowdown
    levels = LevelBoard(cluster, recorder)
    network = None
    if scenario.network is not None or scenario.storage is not None:  # networkx and numba load only then
        from dcsim.build.network import build_network, weight_loader

        network = build_network(scenario, cluster, calibration, speeds, env, recorder, levels, jobs)
    topology = network.topology if network is not None else None
    if topology is not None and len(topology.partitions()) > 1 and placement.name != "topology_aware":
        raise ScenarioError([f"{scenario.source}: policies.placement: the network has {len(topology.partitions())} "
                             f"partitions; use topology_aware, which keeps a job inside one, got {placement.name!r}"])
    startup = spec.startup if spec is not None else 0.0
    training = TrainingEngine(
        env, cluster, jobs, scheduler, placement, speeds, recorder, startup=startup,
        lifecycle=_lifecycle(spec, jobs, startup, recorder),
        quotas=_quotas(spec),
        # With a network, the all-reduce streams set the cost of spreading a job (engine/traffic.py).
        placement_speed=PlacementSpeed(calibration, cluster, reference, nic_collectives(scenario, cluster))
        if topology is None else None, levels=levels,
        traffic=network.traffic if network is not None else None,
        largest_gang=network.largest_gang if network is not None else None)
    if network is not None:
        if network.traffic is not None:
            network.traffic.sink = training
        network.meter.start()
    serving = build_serving(scenario, seed, env, cluster, calibration, recorder, levels,
                            busy_power(scenario, cluster, calibration, caps), training.capacity_changed,
                            training.waiting)
    if serving is not None and network is not None:
        serving.engine.load_weights = weight_loader(network)  # imported above with the network
        wire_network(serving.decoders, network.fabric, network.topology)  # KV transfers share the fabric
    if serving is not None:
        training.on_release = serving.engine.capacity_freed
        training.on_queue = serving.engine.demand_appeared
    build_checkpoints(scenario, env, training, jobs)
    if network is not None and network.traffic is not None:
        wire_tier_checkpoints(scenario, network.traffic)
        if network.traffic.settings.checkpoint_tier is not None:  # suspensions write through the tier too
            from dcsim.engine.suspension_io import SuspensionIO

            training.suspension_io = SuspensionIO(network.traffic)
            training.lifecycle.costs = replace(training.lifecycle.costs, write_bps=math.inf, read_bps=math.inf)
    failures = build_failures(scenario, seed, env, training, _capacity_moved(training, serving), network)
    if failures is not None and serving is not None:
        failures.serving = serving.engine
        serving.engine.losses = ReplicaLosses(scenario.failures.request_retries)  # type: ignore[union-attr]
    power_policy = build_policy(scenario, "power")
    governor = None
    if power_policy.name != "none":  # runs without a power policy stay exactly as they were
        from dcsim.build.power import build_governor

        governor = build_governor(scenario, power_policy, env, cluster, calibration, levels, power, training, speeds,
                                  serving.engine if serving is not None else None, energy)
    simulation = Simulation(env, training, scenario.horizon, serving.engine if serving is not None else None,
                            failures)
    policies: dict[str, dict[str, object]] = {
        "scheduler": {"name": scheduler.name, "params": scheduler.get_params()},
        "placement": {"name": placement.name, "params": placement.get_params()},
    }
    if serving is not None:
        policies.update(serving.policies)
    if governor is not None:
        policies["power"] = {"name": power_policy.name, "params": power_policy.get_params()}
    return Model(scenario, seed, cluster, jobs, report, recorder, simulation, policies, serving=serving,
                 network=network, failures=failures, energy=energy, power=governor)


def _capacity_moved(training: TrainingEngine, serving: Serving | None) -> Callable[[], None]:
    """After a failure or repair: new levels, a scheduling pass, and serving told of freed capacity."""
    def moved() -> None:
        training.capacity_changed()
        training.emit_levels()
        if serving is not None:
            serving.engine.capacity_freed()
    return moved
