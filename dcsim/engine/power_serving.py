"""Serving replicas under the power governor's caps: slower iterations, capped draw.

A cap on an accelerator model binds busy serving replicas' accelerators as it binds training ones.
A replica that draws p W per accelerator at its batch (its uncapped serving power curve) draws
min(p, draw(cap)) under the cap, and every iteration (prefill and decode) takes slowdown(cap, p) times
as long: the calibrated cap-to-slowdown curve (calibration/power.py) with the replica's own draw as
the demand, so a cap above what the replica draws neither slows it nor saves power.

The factor is applied by giving the replica a shape whose iteration coefficients are all scaled by
it (iteration time is linear in them) and whose busy power is capped: the serving hot path reads
the shape as before and costs nothing extra without a power policy. A replica's factor can change
in the middle of an iteration or of a fast-forwarded decode stretch (a cap change, or its own batch
changing its draw); then the iterations done so far keep their times, the one in progress has its
remaining time scaled, and the stretch ends there so the next plan runs at the new speed (the same
times as the per-iteration mode would give). The serving engine's `_schedule_boundary` is wrapped
(an instance attribute, so only runs with a power policy pay for it) to catch replicas planned with
a factor that the levels they just reported have changed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dcsim.engine.power import CapCurve
from dcsim.engine.replica import Replica, ReplicaShape

UNCAPPED: tuple[float | None, float] = (None, 1.0)


@dataclass(frozen=True)
class ScaledTiming:
    """Iteration coefficients times a slowdown (the IterationTiming protocol of engine/replica.py)."""

    prefill_fixed: float
    prefill_token: float
    prefill_token_sq: float
    decode_fixed: float
    decode_request: float
    decode_context: float


class ServingCaps:
    """Applies the governor's caps to the serving engine's busy replicas."""

    def __init__(self, engine: Any, curves: Mapping[str, CapCurve]) -> None:
        self.engine = engine
        self.curves = curves
        self.caps: Mapping[str, float] = {}
        self.applied: dict[int, tuple[float | None, float]] = {}  # replica id -> (cap, slowdown) where capped
        self.base: dict[int, ReplicaShape] = {}  # replica id -> its uncapped shape
        self._shapes: dict[tuple[int, float, float], ReplicaShape] = {}
        self._schedule: Callable[[Replica, float], None] = engine._schedule_boundary
        setattr(engine, "_schedule_boundary", self._scheduled)  # noqa: B010 (an instance hook, see the docstring)

    # --- what the governor reads ----------------------------------------------------------------------
    def busy(self) -> list[Replica]:
        return [r for r in self.engine.replicas if r.busy_since is not None and r.stopped is None]

    def demand(self) -> dict[str, tuple[tuple[float, int], ...]]:
        """Per accelerator model: (uncapped W per accelerator, accelerators) of busy replicas, sorted."""
        found: dict[str, dict[float, int]] = {}
        for replica in self.busy():
            shape = self._base(replica)
            per = found.setdefault(shape.accelerator, {})
            draw = shape.busy_w(replica.batch) / shape.tensor_parallel
            per[draw] = per.get(draw, 0) + shape.tensor_parallel
        return {model: tuple(sorted(per.items())) for model, per in found.items()}

    def apply(self, caps: Mapping[str, float]) -> tuple[float, int]:
        """Bring busy replicas to the caps (those mid-plan are caught by the boundary hook); return the
        serving draw above idle under the caps and the busy serving accelerators the caps slow or limit."""
        self.caps = caps
        extra_w, capped = 0.0, 0
        if not caps and not self.applied:  # nothing capped, nothing to lift: the usual case under a budget
            for replica in self.busy():
                shape = replica.shape
                extra_w += shape.busy_w(len(replica.members) + len(replica.prefilling)) - shape.idle_w
            return extra_w, 0
        for replica in self.busy():
            want = self.wanted(replica)
            if want != self.applied.get(replica.id, UNCAPPED) and replica.boundary_at != math.inf:
                self._retime(replica, want)
            shape = self._base(replica) if want == UNCAPPED else self._shape(replica, want)
            extra_w += shape.busy_w(replica.batch) - shape.idle_w
            capped += replica.tensor_parallel if want != UNCAPPED else 0
        return extra_w, capped

    def wanted(self, replica: Replica) -> tuple[float | None, float]:
        """(cap, slowdown) for the replica at its batch now; UNCAPPED when the cap changes nothing."""
        shape = self._base(replica)
        cap = self.caps.get(shape.accelerator)
        if cap is None:
            return UNCAPPED
        curve = self.curves[shape.accelerator]
        draw = shape.busy_w(replica.batch) / shape.tensor_parallel
        slowdown = curve.serving_slowdown(cap, draw)
        if slowdown <= 1.0 and curve.draw_w(cap) >= draw:
            return UNCAPPED
        return cap, max(slowdown, 1.0)

    # --- applying -----------------------------------------------------------------------------------
    def _note(self, replica: Replica, want: tuple[float | None, float]) -> None:
        if want == UNCAPPED:
            self.applied.pop(replica.id, None)
        else:
            self.applied[replica.id] = want

    def _base(self, replica: Replica) -> ReplicaShape:
        base = self.base.get(replica.id)
        if base is None:
            base = self.base[replica.id] = replica.shape
        return base

    def _shape(self, replica: Replica, want: tuple[float | None, float]) -> ReplicaShape:
        base = self._base(replica)
        cap, slowdown = want
        if cap is None:
            return base
        key = (id(base), cap, slowdown)
        shape = self._shapes.get(key)
        if shape is None:
            t = base.timing
            timing = ScaledTiming(t.prefill_fixed * slowdown, t.prefill_token * slowdown,
                                  t.prefill_token_sq * slowdown, t.decode_fixed * slowdown,
                                  t.decode_request * slowdown, t.decode_context * slowdown)
            limit = self.curves[base.accelerator].draw_w(cap)
            tp, idle = base.tensor_parallel, base.idle_w / base.tensor_parallel
            uncapped = base.busy_w

            def busy_w(batch: int) -> float:
                return tp * max(idle, min(uncapped(batch) / tp, limit))

            shape = self._shapes[key] = replace(base, timing=timing, busy_w=busy_w)
        return shape

    def _scheduled(self, replica: Replica, when: float) -> None:
        """The engine planned (or cut) the replica's iteration: re-time it if its factor is stale."""
        self._schedule(replica, when)
        if replica.busy_since is not None and (self.caps or self.applied):
            want = self.wanted(replica)
            if want != self.applied.get(replica.id, UNCAPPED):
                self._retime(replica, want)

    def _retime(self, replica: Replica, want: tuple[float | None, float]) -> None:
        """Change the replica's factor now: what is done keeps its time, what is left is scaled."""
        old = self.applied.get(replica.id, UNCAPPED)
        ratio = want[1] / old[1]
        now = replica.env.now
        end = replica.boundary_at
        if ratio != 1.0 and end == math.inf:
            return  # being planned: the boundary hook re-times it once its iteration is scheduled
        shape = self._shape(replica, want)
        if ratio != 1.0 and end != math.inf:
            start = replica.segment_start
            if replica.segment_k == 0:  # an explicit iteration
                replica.shape = shape
                end = now + (end - now) * ratio
            elif now <= start:  # a stretch planned now: all of it at the new speed
                replica.shape = shape
                replica.segment_first *= ratio
                end = start + replica.stretch_duration(replica.segment_k)
            else:  # mid-stretch: the iterations done stand; the one in progress ends the stretch
                elapsed = now - start
                j = replica.iterations_by(elapsed)
                done = j if (j < replica.segment_k and replica.stretch_duration(j) <= elapsed) else j - 1
                begun = replica.stretch_duration(done)
                length = replica.stretch_duration(done + 1) - begun
                share = min(max((elapsed - begun) / length, 0.0), 1.0) if length > 0 else 1.0
                finished = replica.advance(done)
                assert not finished, "a decode stretch ends at its first completion"
                replica.shape = shape
                replica.segment_k = 1
                replica.segment_first = length * ratio
                replica.segment_start = now - share * length * ratio
                end = replica.segment_start + replica.segment_first
            self._note(replica, want)
            self._schedule(replica, end)
        else:
            replica.shape = shape
            self._note(replica, want)
        self.engine.record(replica)  # its power (and the cluster levels) under the new cap
