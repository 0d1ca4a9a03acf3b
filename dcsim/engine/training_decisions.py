"""How the training engine applies a scheduler's decisions: StartJob, PreemptJob, NextPass.

A mixin of TrainingEngine, apart so the engine module keeps to events and transitions. Each decision
is checked before it acts (a PolicyError names the policy and the decision): a start must name a
waiting job and an accelerator model it may use with enough free, and the placement's answer must be
free accelerators of that model (unless it is a built-in in policies.base.TRUSTED_PLACEMENTS); a
preemption must name a running job; a next pass a finite delay.
Built-in schedulers in policies.base.TRUSTED_SCHEDULERS skip the decision objects and their checks
(training_passes.py applies their planned pass through _start_job, suspend and _plan_round).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from typing import Any

import simpy

from dcsim.engine.allocation import check_allocation
from dcsim.engine.timers import StaleCalls, TimedCall, call_after
from dcsim.errors import PolicyError
from dcsim.model import Cluster, Job
from dcsim.policies.base import (
    TRUSTED_PLACEMENTS,
    NextPass,
    Placement,
    PlacementRequest,
    PreemptJob,
    StartJob,
    TrainingScheduler,
)


class TrainingDecisions:
    env: simpy.Environment
    cluster: Cluster
    placement: Placement
    scheduler: TrainingScheduler
    _queue: dict[int, Job]
    _active: dict[int, Job]
    _suspending: dict[int, Job]
    _by_estimate: list[tuple[float, float, int]] | None
    _round_call: TimedCall | None
    stale: StaleCalls
    _round_due: bool
    _request_pass: Callable[[], None]
    _start: Callable[[Job, str, tuple[tuple[int, int], ...]], None]
    suspend: Callable[..., None]

    def _apply(self, decision: object) -> None:
        if type(decision) is StartJob:  # the common case first: a hot path of long replays
            self._start_decision(decision)
        elif isinstance(decision, PreemptJob):
            self._preempt(decision)
        elif isinstance(decision, NextPass):
            self._next_pass(decision)
        elif isinstance(decision, StartJob):
            self._start_decision(decision)
        else:
            raise PolicyError(f"scheduler {self._scheduler_name()!r} returned {decision!r}: not a decision "
                              "(StartJob, PreemptJob or NextPass)")

    def _scheduler_name(self) -> Any:
        return getattr(self.scheduler, "name", "?")  # for error messages only

    def _start_decision(self, decision: StartJob) -> None:
        job = self._queue.get(decision.job_id)
        if job is None:
            raise PolicyError(f"scheduler {self._scheduler_name()!r} returned {decision!r}: job is not waiting in "
                              "the queue")
        accelerator = decision.accelerator
        cluster = self.cluster
        if accelerator not in job.candidates:
            raise PolicyError(f"scheduler {self._scheduler_name()!r} started job {job.id} on {accelerator!r}, "
                              f"which it may not use (allowed: {', '.join(job.candidates)})")
        if cluster.free[accelerator] < job.demand:
            raise PolicyError(f"scheduler {self._scheduler_name()!r} started job {job.id} needing {job.demand} "
                              f"{accelerator} but only {cluster.free[accelerator]} are free")
        self._start_job(job, accelerator)

    def _start_job(self, job: Job, accelerator: str) -> None:
        """Start a queued job on `accelerator`, where it fits in what is free (checked or trusted)."""
        cluster, placement = self.cluster, self.placement
        allocation = placement.place(PlacementRequest(job.id, job.demand, accelerator), cluster)
        if type(placement) not in TRUSTED_PLACEMENTS:
            check_allocation(cluster, placement, job, accelerator, allocation)
        cluster.allocate_all(allocation)
        del self._queue[job.id]
        by_estimate = self._by_estimate
        if by_estimate is not None:
            del by_estimate[bisect.bisect_left(by_estimate, (job.estimate, job.submit, job.id))]
        self._start(job, accelerator, allocation if type(allocation) is tuple else tuple(allocation))

    def _preempt(self, decision: PreemptJob) -> None:
        job = self._active.get(decision.job_id)
        if job is None:
            where = "suspending" if decision.job_id in self._suspending else \
                "waiting in the queue" if decision.job_id in self._queue else "not started or already ended"
            raise PolicyError(f"scheduler {self._scheduler_name()!r} returned {decision!r}: job {decision.job_id} is "
                              f"not running ({where})")
        self.suspend(job, preempted=True)

    def _next_pass(self, decision: NextPass) -> None:
        after = decision.after
        if not (type(after) is float and 0 < after < math.inf) and (  # a positive float: the common case
                isinstance(after, bool) or not isinstance(after, int | float) or not 0 < after < math.inf):
            raise PolicyError(f"scheduler {self._scheduler_name()!r} returned {decision!r}: `after` must be a finite "
                              "number of seconds > 0")
        self._plan_round(after)

    def _plan_round(self, after: float) -> None:
        """A pass `after` seconds from now (NextPass); it replaces the one asked for before."""
        if self._round_call is not None:  # only the latest request stands: the earlier one never runs
            self.stale.cancel(self._round_call)
        self._round_call = call_after(self.env, after, self._on_round)

    def _on_round(self, _event: simpy.Event) -> None:
        self._round_call = None
        self._round_due = True
        self._request_pass()

