"""Power budgets: a fixed cluster budget, and demand-response windows that lower it at given times.

Both keep IT power (accelerators, hosts, network, storage) within the budget by capping training
accelerators (uniform_caps in base.py); the governor applies the caps and the calibrated slowdown.
A window is daily ("17:00" to "20:00", on the run's clock) or dated ("2026-07-01T17:00"); the clock
is energy.start where the scenario has one, else the run starts at midnight. Daily windows are wall
time at the site (energy.start's own offset). A dated window with a UTC offset ("...T17:00+02:00") is
that instant; one without is wall time at the site, like energy.start (UTC when the run has no
energy.start and the window has an offset).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from typing import Any

from dcsim.policies.power.base import RUN_CLOCK_DEFAULT, PowerPolicyBase, parse_quantity
from dcsim.policies.registry import register

DAY = 86_400.0


@register("power", "budget")
class Budget(PowerPolicyBase):
    """Cap accelerators so IT power stays within a fixed budget (W or "60kW")."""

    def __init__(self, *, budget: float | str, min_cap: float = 0.33, levels: int = 32) -> None:
        self.budget = budget
        self.min_cap = min_cap
        self.levels = levels
        _check_levels(levels)
        self.budget_value = parse_quantity(budget, "power", "budget")
        if self.budget_value <= 0:
            raise ValueError(f"budget: expected a power > 0, got {budget!r}")
        if not 0 < min_cap <= 1:
            raise ValueError(f"min_cap: expected a fraction of TDP in (0, 1], got {min_cap!r}")

    def budget_w(self, now: float, start: datetime = RUN_CLOCK_DEFAULT) -> float | None:
        return self.budget_value


def _check_levels(levels: int) -> None:
    if not 0 <= levels <= 10_000:
        raise ValueError(f"levels: expected cap steps from 0 (continuous) to 10000, got {levels!r}")


class Window:
    """One demand-response window: daily (seconds of the day) or dated (datetimes)."""

    def __init__(self, raw: Any, index: int) -> None:
        where = f"windows[{index}]"
        keys = {"start", "end", "budget"}
        if not isinstance(raw, dict) or set(raw) != keys:
            raise ValueError(f"{where}: expected {{start, end, budget}}, got {raw!r}")
        self.budget = parse_quantity(raw["budget"], "power", f"{where}.budget")
        start, end = _moment(raw["start"], f"{where}.start"), _moment(raw["end"], f"{where}.end")
        if type(start) is not type(end):
            raise ValueError(f"{where}: start and end must both be times of day or both be date-times")
        if isinstance(start, datetime) and isinstance(end, datetime) and (start.tzinfo is None) != (end.tzinfo is None):
            raise ValueError(f"{where}: start and end must both have a UTC offset or both have none, "
                             f"got {raw['start']} and {raw['end']}")
        if end <= start:  # type: ignore[operator]
            raise ValueError(f"{where}.end: must be after start ({raw['start']}), got {raw['end']}")
        self.daily = isinstance(start, float)
        self.start, self.end = start, end

    def spans(self, now: float, clock: datetime) -> list[tuple[float, float]]:
        """(from, to) in run seconds of this window's occurrences around `now` (dated: its one)."""
        if not self.daily:
            start, end = self.start, self.end
            assert isinstance(start, datetime) and isinstance(end, datetime)
            if start.tzinfo is None:  # wall time at the site, as energy.start is written
                clock = clock.replace(tzinfo=None)
            elif clock.tzinfo is None:  # an instant, on a run whose clock has no offset: taken as UTC
                clock = clock.replace(tzinfo=UTC)
            return [((start - clock).total_seconds(), (end - clock).total_seconds())]
        clock = clock.replace(tzinfo=None)  # daily windows: wall time at the site
        midnight = (clock - datetime.combine(clock.date(), time())).total_seconds()
        day = math.floor((now + midnight) / DAY)
        return [(d * DAY + self.start - midnight, d * DAY + self.end - midnight)  # type: ignore[operator]
                for d in (day - 1, day, day + 1)]


def _moment(value: Any, where: str) -> float | datetime:
    if isinstance(value, str) and "T" not in value and " " not in value.strip() and ":" in value:
        try:
            clock = time.fromisoformat(value if value.count(":") > 1 or len(value) > 4 else f"0{value}")
        except ValueError:
            raise ValueError(f"{where}: expected a time of day like \"17:00\", got {value!r}") from None
        return float(timedelta(hours=clock.hour, minutes=clock.minute, seconds=clock.second).total_seconds())
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{where}: expected \"HH:MM\" (daily) or a date-time like \"2026-07-01T17:00\", "
                         f"got {value!r}") from None


@register("power", "demand_response")
class DemandResponse(PowerPolicyBase):
    """A lower budget inside demand-response windows (daily "17:00"-"20:00" or dated); `budget` outside."""

    def __init__(self, *, windows: list[dict[str, Any]], budget: float | str | None = None,
                 min_cap: float = 0.33, levels: int = 32) -> None:
        self.windows = windows
        self.budget = budget
        self.min_cap = min_cap
        self.levels = levels
        _check_levels(levels)
        if not windows:
            raise ValueError("windows: expected at least one {start, end, budget}")
        self.parsed = [Window(raw, i) for i, raw in enumerate(windows)]
        self.outside = None if budget is None else parse_quantity(budget, "power", "budget")
        if not 0 < min_cap <= 1:
            raise ValueError(f"min_cap: expected a fraction of TDP in (0, 1], got {min_cap!r}")

    def budget_w(self, now: float, start: datetime = RUN_CLOCK_DEFAULT) -> float | None:
        inside = [w.budget for w in self.parsed for a, b in w.spans(now, start) if a <= now < b]
        budgets = inside + ([self.outside] if self.outside is not None else [])
        return min(budgets) if budgets else None

    def next_budget_change(self, now: float, start: datetime = RUN_CLOCK_DEFAULT) -> float:
        edges = [edge for w in self.parsed for span in w.spans(now, start) for edge in span if edge > now]
        return min(edges, default=math.inf)
