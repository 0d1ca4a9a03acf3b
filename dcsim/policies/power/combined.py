"""Several power policies at once: the lowest budget in force holds; node and deferral decisions
come from the parts that make them (at most one part of each kind)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from dcsim.policies.power.base import (
    RUN_CLOCK_DEFAULT,
    DeferralView,
    NodeDecision,
    NodesView,
    PowerPolicyBase,
)
from dcsim.policies.registry import build, register


@register("power", "combined")
class Combined(PowerPolicyBase):
    """Join power policies, e.g. parts: [{name: budget, budget: 60kW}, {name: idle_shutdown}]."""

    def __init__(self, *, parts: list[dict[str, Any]]) -> None:
        self.parts = parts
        if not parts:
            raise ValueError("parts: expected at least one power policy")
        built: list[PowerPolicyBase] = []
        for index, raw in enumerate(parts):
            if not isinstance(raw, dict) or "name" not in raw:
                raise ValueError(f"parts[{index}]: expected {{name: ..., params}}, got {raw!r}")
            params = raw.get("params", {k: v for k, v in raw.items() if k != "name"})
            if raw["name"] in ("combined", "none"):
                raise ValueError(f"parts[{index}]: {raw['name']!r} cannot be a part")
            built.append(build("power", raw["name"], params))
        for kind, what in (("shuts_down", "shut nodes down"), ("defers", "defer jobs")):
            if sum(getattr(part, kind) for part in built) > 1:
                raise ValueError(f"parts: at most one part may {what}")
        self.built = built
        budgets = [part for part in built if part.name in ("budget", "demand_response")]
        self.min_cap = min((part.min_cap for part in budgets), default=0.33)
        self.levels = max((part.levels for part in budgets), default=0)

    def budget_w(self, now: float, start: datetime = RUN_CLOCK_DEFAULT) -> float | None:
        budgets = [b for b in (part.budget_w(now, start) for part in self.built) if b is not None]
        return min(budgets) if budgets else None

    def next_budget_change(self, now: float, start: datetime = RUN_CLOCK_DEFAULT) -> float:
        return min((part.next_budget_change(now, start) for part in self.built), default=math.inf)

    @property
    def shuts_down(self) -> bool:
        return any(part.shuts_down for part in self.built)

    @property
    def defers(self) -> bool:
        return any(part.defers for part in self.built)

    def nodes(self, view: NodesView) -> NodeDecision:
        for part in self.built:
            if part.shuts_down:
                return part.nodes(view)
        return NodeDecision()

    def release_time(self, view: DeferralView) -> float:
        return max(part.release_time(view) for part in self.built)

    def part(self, name: str) -> PowerPolicyBase | None:
        return next((part for part in self.built if part.name == name), None)


@register("power", "none")
class NoPowerPolicy(PowerPolicyBase):
    """No power management (the default): no budget, nodes always on, no deferral."""

    def __init__(self) -> None:
        pass
