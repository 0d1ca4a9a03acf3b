"""The power policy of a scenario, wired to a built model: cap curves, node states, deferral signals.

Checks that need the cluster are made here (one line naming the file and field, exit 2): a budget
below the cluster's idle power cannot be met by any cap; idle shutdown shares the cluster's
out-of-service books with failures, so it is refused beside a failures section. With inference
services, a service that wants a replica and finds no room tells the node policy (which wakes a
node), and a woken node is offered to the training queue and to the services.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import simpy

from dcsim.build.cluster import busy_power, power_caps, uncapped_busy_power
from dcsim.calibration import Calibration
from dcsim.energy.loading import EnergyInputs, energy_inputs
from dcsim.engine.levels import LevelBoard
from dcsim.engine.power import CapCurve, PowerGovernor
from dcsim.engine.power_nodes import NodePower
from dcsim.engine.power_serving import ServingCaps
from dcsim.engine.serving import ServingEngine
from dcsim.engine.training import TrainingEngine
from dcsim.errors import ScenarioError
from dcsim.model import Cluster
from dcsim.model.power import PowerCoefficients
from dcsim.policies.power.base import RUN_CLOCK_DEFAULT, PowerPolicyBase
from dcsim.scenario.schema import Scenario


def cap_curves(scenario: Scenario, cluster: Cluster, calibration: Calibration,
               min_cap_share: float) -> dict[str, CapCurve]:
    """Per accelerator model: its draw and slowdown under a dynamic cap, on top of any static pool cap."""
    static = power_caps(scenario)
    uncapped = uncapped_busy_power(scenario, cluster, calibration)
    busy = busy_power(scenario, cluster, calibration, static)
    model_power = calibration.power
    fitted_power = scenario.energy.busy_power_fraction is None
    curves = {}
    for model in cluster.accelerator_models:
        spec = cluster.specs[model]
        limit = static.get(model)
        fitted = fitted_power and model_power.training_power(model) is not None
        before = model_power.cap_slowdown(model, limit, uncapped[model]) if limit is not None else 1.0

        def effective(cap: float, limit: float | None = limit) -> float:
            return cap if limit is None else min(cap, limit)

        def draw(cap: float, model: str = model, fitted: bool = fitted) -> float:
            cap = effective(cap)
            if fitted:
                return model_power.training_power(model, cap)  # type: ignore[return-value]
            return min(uncapped[model], cap)

        def slowdown(cap: float, model: str = model, before: float = before) -> float:
            return model_power.cap_slowdown(model, effective(cap), uncapped[model]) / before

        def serving_slowdown(cap: float, demand: float, model: str = model, limit: float | None = limit) -> float:
            # A replica's own draw is the demand; relative to the static cap (which serving does not feel).
            slow = model_power.cap_slowdown(model, effective(cap, limit), demand)
            return slow if limit is None else slow / model_power.cap_slowdown(model, limit, demand)

        # Caps are whole watts on a few levels, asked for at every change of load: remember each answer.
        curves[model] = CapCurve(idle_w=spec.idle_w.value, busy_w=busy[model],
                                 min_cap_w=min_cap_share * spec.tdp_w.value,
                                 draw_w=functools.cache(draw), slowdown=functools.cache(slowdown),
                                 serving_slowdown=functools.cache(serving_slowdown))
    return curves


def declared_budgets(policy: PowerPolicyBase, prefix: str = "params") -> list[tuple[str, float]]:
    """(field, W) of every budget a policy declares, to check against the cluster's idle power."""
    found: list[tuple[str, float]] = []
    name = getattr(policy, "name", "")
    if name == "budget":
        found.append((f"{prefix}.budget", policy.budget_value))  # type: ignore[attr-defined]
    elif name == "demand_response":
        for index, window in enumerate(policy.parsed):  # type: ignore[attr-defined]
            found.append((f"{prefix}.windows.{index}.budget", window.budget))
        if policy.outside is not None:  # type: ignore[attr-defined]
            found.append((f"{prefix}.budget", policy.outside))  # type: ignore[attr-defined]
    elif name == "combined":
        for index, part in enumerate(policy.built):  # type: ignore[attr-defined]
            found.extend(declared_budgets(part, f"{prefix}.parts.{index}"))
    return found


def _shutdown_part(policy: PowerPolicyBase) -> Any:
    if getattr(policy, "name", "") == "idle_shutdown":
        return policy
    for part in getattr(policy, "built", ()):
        if part.name == "idle_shutdown":
            return part
    return None


def _woken(training: TrainingEngine, serving: ServingEngine) -> Callable[[], None]:
    """A node woke: the training queue gets a pass and services blocked for room decide again."""
    def woken() -> None:
        training.capacity_changed()
        serving.capacity_freed()
    return woken


def _wire_services(serving: ServingEngine, nodes: NodePower, levels: LevelBoard, env: simpy.Environment) -> None:
    """Services report replicas they want and have no room for; the node policy is asked at once."""
    services = serving.services

    def wants() -> list[tuple[str, int]]:
        return [want for service in services for want in service.blocked_wants]

    nodes.serving_wants = wants
    for service in services:
        service.on_blocked = lambda: levels.emit(env.now)


def build_governor(scenario: Scenario, policy: PowerPolicyBase, env: simpy.Environment, cluster: Cluster,
                   calibration: Calibration, levels: LevelBoard, coefficients: PowerCoefficients,
                   training: TrainingEngine, speeds: Mapping[tuple[str, str], float],
                   serving_engine: ServingEngine | None = None,
                   inputs: EnergyInputs | None = None) -> PowerGovernor | None:
    if getattr(policy, "name", "none") == "none":
        return None
    where = f"{scenario.source}: policies.power"
    idle_w = coefficients.accelerators_idle_w + coefficients.hosts_idle_w
    for field, budget in declared_budgets(policy):
        if budget < idle_w:
            raise ScenarioError([f"{where}.{field}: {budget:.6g} W is below the cluster's idle power "
                                 f"({idle_w:.6g} W: every accelerator and host idle); expected at least that"])
    shutdown = _shutdown_part(policy)
    nodes = None
    if shutdown is not None:
        if scenario.failures is not None:
            raise ScenarioError([f"{where}: idle_shutdown cannot be combined with a failures section yet "
                                 "(both take nodes out of service)"])
        capacity_changed = training.capacity_changed
        if serving_engine is not None:
            capacity_changed = _woken(training, serving_engine)
        nodes = NodePower(env, cluster, policy, training.waiting_jobs, capacity_changed, levels.emit,
                          shutdown.off_w, shutdown.wake_w, shutdown.wake_latency_s)
        if serving_engine is not None:
            _wire_services(serving_engine, nodes, levels, env)
    start = scenario.energy.start
    clock = start if start is not None else RUN_CLOCK_DEFAULT  # its UTC offset kept, for dated windows
    curves = cap_curves(scenario, cluster, calibration, policy.min_cap)
    governor = PowerGovernor(env, policy, cluster, levels, coefficients, curves, training, clock, nodes)
    if serving_engine is not None:  # replicas share the caps (engine/power_serving.py)
        governor.serving = ServingCaps(serving_engine, curves)
    if scenario.horizon is None:
        def work_left() -> bool:
            serving = serving_engine
            return training.finished < len(training.jobs) or (
                serving is not None and serving.finished < len(serving.requests))

        governor.work_left = work_left
        if nodes is not None:
            nodes.work_left = work_left
    if policy.defers:
        if inputs is None:  # constant intensity and price: no files to read
            inputs = energy_inputs(scenario.energy, scenario.base_dir, scenario.horizon)
        signals = [getattr(p, "signal", None) for p in (policy, *getattr(policy, "built", ()))]
        if "price" in signals and inputs.price is None:
            raise ScenarioError([f"{where}: carbon_aware with signal price needs energy.price"])
        governor.carbon = inputs.carbon
        governor.price = inputs.price if inputs.price is not None else inputs.carbon
        governor.horizon = scenario.horizon
        governor.speeds = speeds
        training.release_time = governor.release_time
    governor.install()
    return governor
