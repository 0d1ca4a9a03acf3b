"""The power governor: applies a power policy's decisions to a running simulation.

At every change of the cluster's levels (LevelBoard.before_emit) it brings node states up to date
(idle shutdown, engine/power_nodes.py), asks the policy for the budget in force and the accelerator
caps that meet it, and applies them: each computing training job keeps speed / slowdown(cap) of its
speed through the training engine's power factor (the calibrated cap-to-slowdown curve,
calibration/power.py), and the recorder's accelerator power drops to the calibrated capped draw.
One cap per accelerator model binds busy serving replicas too (engine/power_serving.py): their
accelerators count in the demand the budget must meet, and they iterate slower under the cap.
Budget changes (demand-response windows) are events at their edges; deferrable jobs get their
release time from the policy as they arrive. No polling: everything happens at events.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import simpy

from dcsim.engine.levels import LevelBoard
from dcsim.engine.power_nodes import NodePower
from dcsim.model import Cluster, Job
from dcsim.model.power import PowerCoefficients
from dcsim.policies.power.base import DeferralView, ModelPower, PowerPolicyBase, Signal

CAPS_REMEMBERED = 65_536  # caps kept per distinct (budget, base power, computing accelerators)


@dataclass(frozen=True)
class CapCurve:
    """One accelerator model's calibrated response to a cap (W per computing accelerator, slowdown)."""

    idle_w: float
    busy_w: float  # without a dynamic cap (a pool's static cap included)
    min_cap_w: float
    draw_w: Callable[[float], float]
    slowdown: Callable[[float], float]  # relative to the speed the engine already uses (1 at no cap)
    # A serving accelerator's slowdown under a cap given its own uncapped draw (W): the same curve
    # with the replica's draw as the demand (1 where the cap is at or above it).
    serving_slowdown: Callable[[float, float], float] = lambda cap, draw: 1.0


class ServingPower(Protocol):
    """Busy serving replicas as the governor caps them (engine/power_serving.py)."""

    def demand(self) -> dict[str, tuple[tuple[float, int], ...]]: ...
    def apply(self, caps: Mapping[str, float]) -> tuple[float, int]: ...


@dataclass(frozen=True)
class PowerNow:
    """The PowerView handed to the policy."""

    now: float
    base_w: float
    models: tuple[ModelPower, ...]


class PowerGovernor:
    def __init__(self, env: simpy.Environment, policy: PowerPolicyBase, cluster: Cluster, levels: LevelBoard,
                 coefficients: PowerCoefficients, curves: Mapping[str, CapCurve], training: object,
                 clock: datetime, nodes: NodePower | None = None) -> None:
        self.env = env
        self.policy = policy
        self.cluster = cluster
        self.levels = levels
        self.power = coefficients
        self.curves = dict(curves)
        self.training = training
        self.clock = clock
        self.nodes = nodes
        self.caps: dict[str, float] = {}
        self.factors: dict[str, float] = dict.fromkeys(cluster.accelerator_models, 1.0)
        self.budget: float | None = None
        # One row per emitted instant: time, budget (nan: none), IT power, capped accelerators, nodes off,
        # nodes waking. Several changes at one instant: the last holds (as the recorder's levels).
        self.rows: list[tuple[float, float, float, int, int, int]] = []
        self._budget_timer = math.inf
        self.carbon: Signal | None = None
        self.price: Signal | None = None
        self.horizon: float | None = None
        self.speeds: Mapping[tuple[str, str], float] = {}
        self.deferred_s = 0.0
        self._last_key: tuple[object, ...] | None = None
        self._caps_seen: dict[tuple[object, ...], dict[str, float]] = {}
        # Whether work is left (jobs or requests): without a horizon a run ends at its last change, so
        # budget edges and idle timers after the last job must not extend it (nor run for ever).
        self.work_left: Callable[[], bool] = lambda: True
        self.serving: ServingPower | None = None  # inference services' replicas under the caps
        self._settling = False

    def install(self) -> None:
        self.levels.before_emit = self.settle
        self.levels.recorder.power_adjusted = True  # type: ignore[attr-defined]
        self._plan_budget_change(0.0)

    # --- caps -------------------------------------------------------------------------------------
    def settle(self, now: float) -> None:
        if self._settling:  # a replica re-timed by this settle reports its levels: the outer row holds
            return
        self._settling = True
        try:
            self._settle(now)
        finally:
            self._settling = False

    def _settle(self, now: float) -> None:
        if self.nodes is not None:
            self.nodes.settle(now)
            self.levels.nodes_adjust_w = self.nodes.adjust_w
        self.budget = self.policy.budget_w(now, self.clock)
        demand = self.serving.demand() if self.serving is not None else {}
        view = self._view(now, demand)
        key: tuple[object, ...] = (self.budget, view.base_w, tuple(m.busy for m in view.models))
        if demand:
            key += (tuple(m.serving for m in view.models),)
        if key != self._last_key:  # the policy is a function of these: ask only when they change
            self._last_key = key
            known = self._caps_seen.get(key)  # loads recur (the same jobs, hosts and budget): remember
            if known is None:
                caps = self.policy.caps(view, self.budget) if self.budget is not None else {}
                known = {m: c for m, c in caps.items() if self._binds(m, c, demand.get(m, ()))}
                if len(self._caps_seen) >= CAPS_REMEMBERED:
                    self._caps_seen.clear()
                self._caps_seen[key] = known
            self.caps = known
        capped_w = 0.0
        busy = self.levels.training_busy
        for model in self.cluster.accelerator_models:
            curve = self.curves[model]
            cap = self.caps.get(model)
            self.factors[model] = 1.0 if cap is None else 1.0 / curve.slowdown(cap)
            if cap is not None:
                capped_w += busy[model] * (max(curve.draw_w(cap), curve.idle_w) - max(curve.busy_w, curve.idle_w))
        self.levels.capped_w = capped_w
        set_factor = self.training.set_power_factor  # type: ignore[attr-defined]
        for job in list(self.training.running_jobs()):  # type: ignore[attr-defined]
            factor = self.factors[job.accelerator]
            if job.power_factor != factor:
                set_factor(job, factor)
        it_w = view.base_w + capped_w
        for i, model in enumerate(self.cluster.accelerator_models):
            it_w += busy[model] * self.power.accelerator_delta_w[i]
        capped = sum(busy[m] for m in self.caps)
        if self.serving is not None:
            serving_w, serving_capped = self.serving.apply(self.caps)
            it_w += serving_w
            capped += serving_capped
        off, waking = self.nodes.counts() if self.nodes is not None else (0, 0)
        row = (now, math.nan if self.budget is None else self.budget, it_w, capped, off, waking)
        if self.rows and self.rows[-1][0] == now:
            self.rows[-1] = row
        else:
            self.rows.append(row)

    def _binds(self, model: str, cap: float, serving: tuple[tuple[float, int], ...]) -> bool:
        """Whether a cap changes anything: below the training draw, or below a busy replica's."""
        curve = self.curves[model]
        return cap < curve.busy_w or any(curve.draw_w(cap) < w or curve.serving_slowdown(cap, w) > 1.0
                                         for w, _ in serving)

    def _view(self, now: float, serving: Mapping[str, tuple[tuple[float, int], ...]]) -> PowerNow:
        """IT power with computing accelerators idle, computed as the recorder will (metrics/recorder.py);
        busy replicas' draw is in the models (their uncapped demand), not in the base."""
        levels, power, cluster = self.levels, self.power, self.cluster
        accelerators = power.accelerators_idle_w  # training accelerators and busy replicas at idle
        if self.serving is None:
            accelerators += levels.serving_extra_w  # (0: no inference services)
        hosts = power.hosts_idle_w + levels.nodes_adjust_w
        for i, pool in enumerate(cluster.pools):
            hosts += cluster.occupied_nodes[pool] * power.host_delta_w[i]
        base = accelerators + hosts + levels.network_w + levels.storage_w
        models = tuple(ModelPower(m, levels.training_busy[m], c.idle_w, c.busy_w, c.min_cap_w, c.draw_w,
                                  serving.get(m, ()))
                       for m, c in self.curves.items())
        return PowerNow(now, base, models)

    def _plan_budget_change(self, now: float) -> None:
        at = self.policy.next_budget_change(now, self.clock)
        if math.isfinite(at) and at > now and at < self._budget_timer:
            self._budget_timer = at
            self.env.timeout(at - now).callbacks.append(self._on_budget_change)

    def _on_budget_change(self, _event: simpy.Event) -> None:
        self._budget_timer = math.inf
        if not self.work_left():
            return
        self.levels.emit(self.env.now)
        self._plan_budget_change(self.env.now)

    # --- deferral ---------------------------------------------------------------------------------
    def release_time(self, job: Job) -> float:
        """When a deferrable job may enter the queue (the policy's choice; now if it defers nothing)."""
        now = self.env.now
        if self.carbon is None or self.price is None:
            return now
        models = job.allowed or self.cluster.accelerator_models
        speeds = [self.speeds.get((job.model, m), 0.0) for m in models if m in self.cluster.capacity]
        speed = max(speeds, default=0.0)
        if speed <= 0:
            return now
        view = DeferralView(now, self.carbon, self.price, job.estimate / speed, job.deadline, self.horizon)
        release = max(now, self.policy.release_time(view))
        self.deferred_s += release - now
        return release
