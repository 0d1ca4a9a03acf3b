"""Power policies: what they read (views), what they return (decisions), and the parts they share.

A power policy is one registered object with up to four parts, each a method with a neutral default:
a power budget over time (`budget_w`, `next_budget_change`), how to cap accelerators to meet it
(`caps`), which idle nodes to power off or wake (`nodes`), and when a deferrable job may enter the
queue (`release_time`). The engine's governor (engine/power.py) asks and applies; the policy keeps
no engine state. `combined` (combined.py) joins several policies: the lowest budget holds, node and
deferral decisions come from the parts that make them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dcsim.policies.base import PolicyBase

RUN_CLOCK_DEFAULT = datetime(2000, 1, 1)  # a run without energy.start begins at midnight


@dataclass(frozen=True)
class ModelPower:
    """One accelerator model as the budget sees it: how many train or serve, their draw, the caps allowed.

    A cap binds training and serving accelerators alike: a serving accelerator that draws p uncapped
    draws min(p, draw_w(cap)) under it (engine/power_serving.py)."""

    name: str
    busy: int  # training accelerators computing now
    idle_w: float
    uncapped_w: float  # draw of a computing accelerator with no dynamic cap (a pool's static cap included)
    min_cap_w: float  # lowest cap the governor may set
    draw_w: Callable[[float], float]  # W drawn by a computing accelerator under a cap (calibrated)
    # Busy serving replicas' accelerators: (uncapped W per accelerator at the replica's batch, accelerators).
    serving: tuple[tuple[float, int], ...] = ()


class PowerView(Protocol):
    """What a budget sees at one instant."""

    @property
    def now(self) -> float: ...
    @property
    def base_w(self) -> float:
        """IT power now with every training accelerator and every busy serving replica's accelerators at
        idle draw (hosts, network, storage as now)."""
    @property
    def models(self) -> Sequence[ModelPower]: ...


@dataclass(frozen=True)
class NodeState:
    id: int
    pool: str
    accelerator: str
    size: int
    state: str  # "on", "off", "waking"
    idle_since: float | None  # when its accelerators all became free (None: some are allocated, or not on)


class NodesView(Protocol):
    """What idle shutdown sees: nodes, the training demand that waits, and replicas services want."""

    @property
    def now(self) -> float: ...
    @property
    def nodes(self) -> Sequence[NodeState]: ...
    def free(self, accelerator: str) -> int:
        """Free accelerators of a model on powered nodes."""
    def waiting_jobs(self) -> Iterable[tuple[int, tuple[str, ...]]]:
        """Queued jobs in queue order: (accelerators wanted, usable models fastest first)."""
    def serving_wants(self) -> Sequence[tuple[str, int]]:
        """Replicas that inference services want and no powered node has room for: (model, accelerators
        on one node) each."""


@dataclass(frozen=True)
class NodeDecision:
    power_off: tuple[int, ...] = ()
    wake: tuple[int, ...] = ()
    check_at: float = math.inf  # ask again then (an idle timer), or at the next change


class Signal(Protocol):
    """A piecewise-constant time series (carbon intensity or price), t in seconds since the run start."""

    def at(self, t: float) -> float: ...
    def next_change(self, t: float) -> float: ...
    def mean(self, t0: float, t1: float) -> float: ...


@dataclass(frozen=True)
class DeferralView:
    now: float
    carbon: Signal
    price: Signal
    runtime_estimate: float  # seconds the job would run at full speed on its fastest usable model
    deadline: float | None  # completion deadline, seconds since run start
    horizon: float | None = None


class PowerPolicyBase(PolicyBase):
    """Neutral defaults: no budget, no node decisions, no deferral."""

    min_cap: float = 0.33  # lowest cap as a share of TDP (budget policies take it as a parameter)
    levels: int = 0  # cap steps between the lowest cap and the uncapped draw (0: continuous)

    def budget_w(self, now: float, start: datetime = RUN_CLOCK_DEFAULT) -> float | None:
        """The IT power budget in force at `now` (run seconds; `start` is the run's clock); None: none."""
        return None

    def next_budget_change(self, now: float, start: datetime = RUN_CLOCK_DEFAULT) -> float:
        return math.inf

    def caps(self, view: PowerView, budget_w: float) -> dict[str, float]:
        """W per accelerator model (absent: uncapped) so that IT power stays within `budget_w`."""
        return uniform_caps(view, budget_w, self.levels)

    def nodes(self, view: NodesView) -> NodeDecision:
        return NodeDecision()

    def release_time(self, view: DeferralView) -> float:
        return view.now

    @property
    def shuts_down(self) -> bool:
        return False

    @property
    def defers(self) -> bool:
        return False


def capped_power(view: PowerView, caps: Mapping[str, float]) -> float:
    """IT power now if these caps held (uncapped models draw their uncapped power)."""
    total = view.base_w
    for model in view.models:
        cap = caps.get(model.name)
        draw = model.uncapped_w if cap is None else model.draw_w(cap)
        total += model.busy * (max(draw, model.idle_w) - model.idle_w)
        for serving_w, count in model.serving:  # a replica draws its own (batch-dependent) power, the cap at most
            total += count * (max(serving_w if cap is None else min(serving_w, draw), model.idle_w) - model.idle_w)
    return total


def uniform_caps(view: PowerView, budget_w: float, levels: int = 0, steps: int = 40) -> dict[str, float]:
    """Caps that meet the budget with the least throttling applied alike to every model: each cap sits
    the same share f of the way from its lowest allowed cap to its uncapped draw, f as high as the
    budget allows (bisection; power is non-decreasing in f). {} when no cap is needed; the lowest caps
    when even they do not meet the budget (the governor then counts seconds over budget). Caps are
    whole watts, rounded down (boards take power limits in watts), so the budget still holds. With
    `levels` > 0 the share is rounded down to a multiple of 1 / levels: caps, and so the running jobs'
    speeds (each change re-plans their completions), change only when the load moves a step."""
    busy = [m for m in view.models if m.busy > 0 or m.serving]
    if not busy or capped_power(view, {}) <= budget_w:
        return {}

    def at(share: float) -> dict[str, float]:
        return {m.name: max(math.floor(m.min_cap_w + share * max(m.uncapped_w - m.min_cap_w, 0.0)), m.min_cap_w)
                for m in busy}

    if capped_power(view, at(0.0)) > budget_w:
        return at(0.0)
    if levels > 0:  # the highest of the levels 0..levels that meets the budget: a bisection over integers
        low_level, high_level = 0, levels
        while low_level < high_level:
            middle_level = (low_level + high_level + 1) // 2
            if capped_power(view, at(middle_level / levels)) <= budget_w:
                low_level = middle_level
            else:
                high_level = middle_level - 1
        return at(low_level / levels)
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2
        if capped_power(view, at(middle)) <= budget_w:
            low = middle
        else:
            high = middle
    return at(low)


def parse_quantity(value: float | int | str, kind: str, what: str) -> float:
    """A policy parameter given as a number (SI) or a unit string ("60kW", "15min")."""
    from dcsim.errors import UnitError
    from dcsim.units import parse

    try:
        number = parse(value, kind)  # type: ignore[arg-type]
    except UnitError as exc:
        raise ValueError(f"{what}: {exc}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what}: expected a finite value >= 0, got {value!r}")
    return number
