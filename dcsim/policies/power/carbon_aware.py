"""Carbon-aware deferral: a deferrable job enters the queue at the start time, up to the latest one
that still meets its deadline, whose run sees the lowest mean carbon intensity (or price).

The series is piecewise constant, so the mean over [t, t + run) changes slope only where t or
t + run crosses a change of the series: those instants (and now, and the latest start) are the only
candidates worth comparing. The latest start keeps a safety share of the run time in hand for
queueing; a job is deferred only when a later start is strictly better.
"""

from __future__ import annotations

from dcsim.policies.power.base import DeferralView, PowerPolicyBase
from dcsim.policies.registry import register

MAX_CHANGES = 10_000  # series changes examined per decision (an hourly series: over a year)


@register("power", "carbon_aware")
class CarbonAware(PowerPolicyBase):
    """Hold deferrable jobs until the hours of lowest carbon intensity (or price) before their deadline."""

    def __init__(self, *, signal: str = "carbon", safety: float = 1.0) -> None:
        self.signal = signal
        self.safety = safety
        if signal not in ("carbon", "price"):
            raise ValueError(f"signal: expected 'carbon' or 'price', got {signal!r}")
        if not 0 <= safety <= 10:
            raise ValueError(f"safety: expected a share of the run time in [0, 10], got {safety!r}")

    @property
    def defers(self) -> bool:
        return True

    def release_time(self, view: DeferralView) -> float:
        now, run = view.now, view.runtime_estimate
        if view.deadline is None or run <= 0:
            return now
        latest = view.deadline - run * (1.0 + self.safety)
        if view.horizon is not None:
            latest = min(latest, view.horizon - run)
        if latest <= now:
            return now
        series = view.carbon if self.signal == "carbon" else view.price
        candidates = {now, latest}
        t = now
        for _ in range(MAX_CHANGES):
            t = series.next_change(t)
            if t >= latest + run:
                break
            if now < t <= latest:
                candidates.add(t)
            if now < t - run <= latest:
                candidates.add(t - run)
        best, best_mean = now, series.mean(now, now + run)
        for start in sorted(candidates):
            mean = series.mean(start, start + run)
            if mean < best_mean - 1e-12 * max(abs(best_mean), 1.0):
                best, best_mean = start, mean
        return best
