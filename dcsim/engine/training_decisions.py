"""How the training engine applies a scheduler's decisions: StartJob, PreemptJob, NextPass.

A mixin of TrainingEngine, apart so the engine module keeps to events and transitions. Each decision
is checked before it acts (a PolicyError names the policy and the decision): a start must name a
waiting job and an accelerator model it may use with enough free, and the placement's answer must be
free accelerators of that model; a preemption must name a running job; a next pass a finite delay.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from functools import partial

import simpy

from dcsim.engine.allocation import check_allocation
from dcsim.errors import PolicyError
from dcsim.model import Cluster, Job
from dcsim.policies.base import NextPass, Placement, PlacementRequest, PreemptJob, StartJob, TrainingScheduler


class TrainingDecisions:
    env: simpy.Environment
    cluster: Cluster
    placement: Placement
    scheduler: TrainingScheduler
    _queue: dict[int, Job]
    _active: dict[int, Job]
    _suspending: dict[int, Job]
    _by_estimate: list[tuple[float, float, int]]
    _round_version: int
    _round_due: bool
    _request_pass: Callable[[], None]
    _start: Callable[[Job, str, tuple[tuple[int, int], ...]], None]
    suspend: Callable[..., None]

    def _apply(self, decision: object) -> None:
        scheduler = getattr(self.scheduler, "name", "?")  # for error messages only
        if isinstance(decision, PreemptJob):
            self._preempt(decision, scheduler)
            return
        if isinstance(decision, NextPass):
            self._next_pass(decision, scheduler)
            return
        if not isinstance(decision, StartJob):
            raise PolicyError(f"scheduler {scheduler!r} returned {decision!r}: not a decision "
                              "(StartJob, PreemptJob or NextPass)")
        job = self._queue.get(decision.job_id)
        if job is None:
            raise PolicyError(f"scheduler {scheduler!r} returned {decision!r}: job is not waiting in the queue")
        accelerator = decision.accelerator
        if accelerator not in job.candidates:
            raise PolicyError(f"scheduler {scheduler!r} started job {job.id} on {accelerator!r}, "
                              f"which it may not use (allowed: {', '.join(job.candidates)})")
        if self.cluster.free[accelerator] < job.demand:
            raise PolicyError(f"scheduler {scheduler!r} started job {job.id} needing {job.demand} {accelerator} "
                              f"but only {self.cluster.free[accelerator]} are free")
        allocation = self.placement.place(PlacementRequest(job.id, job.demand, accelerator), self.cluster)
        check_allocation(self.cluster, self.placement, job, accelerator, allocation)
        self.cluster.allocate_all(allocation)
        del self._queue[job.id]
        del self._by_estimate[bisect.bisect_left(self._by_estimate, (job.estimate, job.submit, job.id))]
        self._start(job, accelerator, tuple(allocation))

    def _preempt(self, decision: PreemptJob, scheduler: str) -> None:
        job = self._active.get(decision.job_id)
        if job is None:
            where = "suspending" if decision.job_id in self._suspending else \
                "waiting in the queue" if decision.job_id in self._queue else "not started or already ended"
            raise PolicyError(f"scheduler {scheduler!r} returned {decision!r}: job {decision.job_id} is not running "
                              f"({where})")
        self.suspend(job, preempted=True)

    def _next_pass(self, decision: NextPass, scheduler: str) -> None:
        after = decision.after
        if isinstance(after, bool) or not isinstance(after, int | float) or not 0 < after < math.inf:
            raise PolicyError(f"scheduler {scheduler!r} returned {decision!r}: `after` must be a finite number "
                              "of seconds > 0")
        self._round_version += 1
        self.env.timeout(after).callbacks.append(partial(self._on_round, self._round_version))

    def _on_round(self, version: int, _event: simpy.Event) -> None:
        if version == self._round_version:  # only the latest request stands
            self._round_due = True
            self._request_pass()

