"""Piecewise-constant time series (carbon intensity, price, weather), read once into arrays.

Times are seconds since the run's start. A series holds each value from its time until the next
(the last value holds on, or the series repeats with a period: a day, a year). Consecutive equal
values are merged when the series is built, so every stored breakpoint is a change of value and
`next_change` answers in one binary search: the engine asks only where something depends on a change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

import numpy as np


class TimeSeries:
    """A value that changes at given times: `at(t)`, `next_change(t)`, `mean`, `integral`.

    Non-repeating: the first value also holds before the first time and the last holds on forever.
    Repeating (period P): `times` lie in [0, P) and start at 0; `phase` is where in the period the
    run starts (seconds), so the value at run time t is the series at phase (phase + t) mod P.
    """

    unit: str

    def __init__(self, times: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, unit: str,
                 *, period: float | None = None, phase: float = 0.0) -> None:
        times_array = np.asarray(times, dtype=float)
        values_array = np.asarray(values, dtype=float)
        if times_array.ndim != 1 or times_array.shape != values_array.shape or times_array.size == 0:
            raise ValueError("a series needs one value per time and at least one point")
        if times_array.size > 1 and not bool(np.all(np.diff(times_array) > 0)):
            raise ValueError("series times must be strictly increasing")
        if not (np.all(np.isfinite(times_array)) and np.all(np.isfinite(values_array))):
            raise ValueError("series times and values must be finite")
        if period is not None:
            if not period > 0 or times_array[0] != 0.0 or times_array[-1] >= period:
                raise ValueError("a repeating series needs times in [0, period) starting at 0")
            phase = float(phase) % period
        keep = np.ones(times_array.size, dtype=bool)
        keep[1:] = values_array[1:] != values_array[:-1]  # merge runs of equal values
        self.times = times_array[keep]
        self.values = values_array[keep]
        self.unit = unit
        self.held_rows = 0  # empty cells of the source file that held the value before them
        self.data_until = math.inf  # run time where the source data ends (the last value holds on after it)
        self.period = period
        self.phase = phase
        # cumulative integral up to each breakpoint (value x seconds), for O(log n) integrals
        self._cumulative = np.concatenate(([0.0], np.cumsum(self.values[:-1] * np.diff(self.times))))
        self._period_integral = (float(self._cumulative[-1] + self.values[-1] * (period - self.times[-1]))
                                 if period is not None else 0.0)

    @classmethod
    def constant(cls, value: float, unit: str) -> TimeSeries:
        return cls([0.0], [value], unit)

    @property
    def is_constant(self) -> bool:
        return self.values.size == 1

    # --- lookups (scalars or arrays) ---------------------------------------------------------------

    def _position(self, t: np.ndarray) -> np.ndarray:
        """Series time for run times `t` (within one period when repeating)."""
        if self.period is None:
            return t
        return np.mod(t + self.phase, self.period)

    @overload
    def at(self, t: float) -> float: ...
    @overload
    def at(self, t: np.ndarray) -> np.ndarray: ...

    def at(self, t: float | np.ndarray) -> float | np.ndarray:
        """Value at run time t (seconds since the start); vectorised over arrays."""
        array = np.asarray(t, dtype=float)
        index = np.searchsorted(self.times, self._position(array), side="right") - 1
        found = self.values[np.clip(index, 0, self.values.size - 1)]
        return float(found) if array.ndim == 0 else found

    def next_change(self, t: float) -> float:
        """First run time > t at which the value changes; math.inf if it never does."""
        n = self.times.size
        if self.period is None:  # the first value also holds before the first time: no change there
            index = max(int(np.searchsorted(self.times, t, side="right")), 1)
            return float(self.times[index]) if index < n else math.inf
        if n == 1:
            return math.inf
        position = float(self._position(np.asarray(t, dtype=float)))
        index = int(np.searchsorted(self.times, position, side="right"))
        if index < n:
            step = self.times[index] - position
        else:  # wraps: the value at phase 0 differs from the last one unless they were merged across the wrap
            wraps_to_change = self.values[0] != self.values[-1]
            step = self.period - position + (0.0 if wraps_to_change else self.times[1])
        return t + float(step)

    def _antiderivative(self, t: np.ndarray) -> np.ndarray:
        """Integral of the series from run time 0 to t (negative for t < 0)."""
        if self.period is None:
            position = t
            index = np.clip(np.searchsorted(self.times, position, side="right") - 1, 0, self.times.size - 1)
            return self._cumulative[index] + self.values[index] * (position - self.times[index]) \
                - self._before(0.0)
        absolute = t + self.phase
        cycles = np.floor(absolute / self.period)
        position = absolute - cycles * self.period
        index = np.clip(np.searchsorted(self.times, position, side="right") - 1, 0, self.times.size - 1)
        within = self._cumulative[index] + self.values[index] * (position - self.times[index])
        return cycles * self._period_integral + within - self._within_period(self.phase)

    def _before(self, t: float) -> float:
        """Antiderivative of the non-repeating series from its first time to t."""
        index = int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, self.times.size - 1))
        return float(self._cumulative[index] + self.values[index] * (t - self.times[index]))

    def _within_period(self, position: float) -> float:
        index = int(np.clip(np.searchsorted(self.times, position, side="right") - 1, 0, self.times.size - 1))
        return float(self._cumulative[index] + self.values[index] * (position - self.times[index]))

    @overload
    def integral(self, t0: float, t1: float) -> float: ...
    @overload
    def integral(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray: ...

    def integral(self, t0: float | np.ndarray, t1: float | np.ndarray) -> float | np.ndarray:
        """Value x seconds over [t0, t1); vectorised over arrays of interval ends."""
        a, b = np.asarray(t0, dtype=float), np.asarray(t1, dtype=float)
        result = self._antiderivative(b) - self._antiderivative(a)
        return float(result) if result.ndim == 0 else result

    def mean(self, t0: float, t1: float) -> float:
        """Time-weighted mean over [t0, t1); the value at t0 for an empty interval."""
        if t1 <= t0:
            return self.at(t0)
        return self.integral(t0, t1) / (t1 - t0)

    def changes_between(self, t0: float, t1: float) -> np.ndarray:
        """Run times in (t0, t1) where the value changes, in order (for splitting intervals)."""
        if self.period is None:
            lo, hi = np.searchsorted(self.times, [t0, t1], side="right")
            inner = self.times[max(int(lo), 1):hi]
            return inner[inner < t1]
        if self.times.size == 1:
            return np.empty(0)
        start = t0 + self.phase
        first_cycle = math.floor(start / self.period)
        last_cycle = math.floor((t1 + self.phase) / self.period)
        breaks = self.times if self.values[0] != self.values[-1] else self.times[1:]
        cycles = np.arange(first_cycle, last_cycle + 1, dtype=float)
        candidates = (cycles[:, None] * self.period + breaks[None, :]).ravel() - self.phase
        return candidates[(candidates > t0) & (candidates < t1)]

    def __repr__(self) -> str:
        repeat = f", period={self.period:g} s" if self.period is not None else ""
        return f"TimeSeries({self.values.size} values, unit={self.unit!r}{repeat})"
