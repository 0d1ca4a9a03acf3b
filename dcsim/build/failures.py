"""Wire failures and periodic checkpoints into a model: the failure process, its targets, and the
checkpoint interval of each job (fixed, or Young/Daly from the job's own components)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from dcsim.engine.checkpoints import PeriodicCheckpoints, daly_interval
from dcsim.engine.failures import ClassSpec, FailureProcess, FailureSettings, RepairTime
from dcsim.engine.training import TrainingEngine
from dcsim.errors import ScenarioError
from dcsim.model import Job
from dcsim.scenario.failures import ComponentFailures, Repair, component_classes
from dcsim.scenario.schema import Scenario

if TYPE_CHECKING:
    from dcsim.build.network import NetworkModel
    from dcsim.engine.traffic import TrainingTraffic


class JobFailureRate:
    """Failures per second of a job's own components: its accelerators, the nodes it spans and (when
    it spans several) their network links; lemons raise the mean rate by their share."""

    def __init__(self, classes: dict[str, ComponentFailures], lemon_factor: float) -> None:
        self.rates = {name: lemon_factor / spec.mean_time_to_failure for name, spec in classes.items()}

    def __call__(self, job: Job) -> float:
        nodes = max(1, len(job.allocation))
        rate = job.demand * self.rates.get("accelerator", 0.0) + nodes * self.rates.get("node", 0.0)
        if nodes > 1:
            rate += nodes * self.rates.get("link", 0.0)
        return rate


def build_failures(scenario: Scenario, seed: int, env: simpy.Environment, training: TrainingEngine,
                   on_change: Callable[[], None], network: NetworkModel | None) -> FailureProcess | None:
    spec = scenario.failures
    if spec is None:
        return None
    switches = None
    if network is not None and (spec.switch or spec.fabric_link or spec.storage) is not None:
        from dcsim.engine.network_failures import NetworkFailures

        switches = NetworkFailures(network.topology, network.traffic, training.cluster,
                                  lambda job: process.interrupt_stranded(job))
    training.requeue_front = spec.requeue == "front"
    classes = [_class_spec(name, component) for name, component in component_classes(spec).items()]
    settings = FailureSettings(
        detection=spec.detection, lemon_fraction=spec.lemons.fraction if spec.lemons is not None else 0.0,
        lemon_multiplier=spec.lemons.rate_multiplier if spec.lemons is not None else 1.0,
        spares=tuple((s.pool, s.nodes, s.swap_delay) for s in spec.spares))
    process = FailureProcess(env, training.cluster, settings, classes, seed, training, on_change, switches)
    if switches is not None and network is not None and network.traffic is not None:
        network.traffic.unroutable = process.interrupt_stranded
    return process


def _class_spec(name: str, component: ComponentFailures) -> ClassSpec:
    weibull = (component.weibull.shape, component.weibull.scale) if component.weibull is not None else None
    causes = tuple((cause, item.share, _repair(item.repair_spec())) for cause, item in component.causes.items())
    return ClassSpec(name, component.mtbf, weibull, causes)


def _repair(repair: Repair) -> RepairTime:
    return RepairTime(repair.mean, repair.distribution, repair.sigma)


def job_failure_rate(scenario: Scenario) -> JobFailureRate | None:
    spec = scenario.failures
    if spec is None:
        return None
    lemons = spec.lemons
    factor = 1.0 + (lemons.fraction * (lemons.rate_multiplier - 1.0) if lemons is not None else 0.0)
    return JobFailureRate(component_classes(spec), factor)


def checkpoint_interval(scenario: Scenario, save_seconds: Callable[[Job], float]) -> Callable[[Job], float]:
    """Seconds of running between a job's checkpoints."""
    spec = scenario.workload.training
    checkpoint = getattr(spec, "checkpoint", None)
    assert checkpoint is not None
    if checkpoint.policy == "fixed":
        assert checkpoint.interval is not None
        fixed = float(checkpoint.interval)
        return lambda job: fixed
    rate = job_failure_rate(scenario)
    if rate is None:
        raise ScenarioError([f"{scenario.source}: workload.training.checkpoint.policy: young_daly needs a "
                             "failures section (the job's failure rate); give a duration instead"])
    return lambda job: daly_interval(save_seconds(job), 1.0 / rate(job) if rate(job) > 0 else math.inf)


def build_checkpoints(scenario: Scenario, env: simpy.Environment, training: TrainingEngine,
                      jobs: list[Job]) -> None:
    """Periodic checkpoints without a storage tier (with one, engine/traffic.py writes them)."""
    spec = scenario.workload.training
    checkpoint = getattr(spec, "checkpoint", None)
    if checkpoint is None or checkpoint.tier is not None:
        return
    bandwidth = checkpoint.write_bandwidth
    fixed = checkpoint.save_time

    def save_seconds(job: Job) -> float:
        if fixed is not None:
            return fixed
        return (job.checkpoint_bytes or 0.0) / bandwidth if bandwidth else 0.0

    if checkpoint.policy == "young_daly" and not (fixed or bandwidth):
        raise ScenarioError([f"{scenario.source}: workload.training.checkpoint: young_daly needs a checkpoint "
                             "cost; give save_time > 0 (or write_bandwidth with checkpoint sizes)"])
    if checkpoint.interval is not None and fixed is None:  # per job: sizes may differ
        for job in jobs:
            if save_seconds(job) > float(checkpoint.interval):
                raise ScenarioError([f"{scenario.source}: workload.training.checkpoint.interval: "
                                     f"{float(checkpoint.interval):g} s is shorter than the save time of job "
                                     f"{job.name!r} ({save_seconds(job):g} s); expected a longer interval"])
    training.checkpoints = PeriodicCheckpoints(
        env, training, training.lifecycle, checkpoint_interval(scenario, save_seconds), save_seconds,
        stall=checkpoint.mode == "stall", slowdown=checkpoint.slowdown)


def wire_tier_checkpoints(scenario: Scenario, traffic: TrainingTraffic) -> None:
    """Young/Daly intervals for checkpoints written through a storage tier."""
    checkpoint = getattr(scenario.workload.training, "checkpoint", None)
    if checkpoint is None or checkpoint.tier is None or checkpoint.policy != "young_daly":
        return
    estimate = tier_save_estimate(scenario)
    traffic.checkpoint_interval = checkpoint_interval(
        scenario, lambda job: estimate(job, traffic.profile(job).checkpoint_bytes))


def tier_save_estimate(scenario: Scenario) -> Callable[[Job, Any], float]:
    """Young/Daly through a storage tier: the checkpoint cost is estimated as its bytes over the tier's
    write bandwidth (per node for node-local tiers), without contention."""
    storage = scenario.storage
    spec = scenario.workload.training
    checkpoint = getattr(spec, "checkpoint", None)
    assert storage is not None and checkpoint is not None
    tier = next(t for t in storage.tiers if t.name == checkpoint.tier)

    def estimate(job: Job, checkpoint_bytes: Any) -> float:
        size = float(checkpoint_bytes)
        if tier.kind == "node_local":
            size /= max(1, len(job.allocation))
        return size / tier.write_bandwidth

    return estimate
