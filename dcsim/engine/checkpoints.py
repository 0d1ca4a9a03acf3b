"""Periodic checkpoints of training jobs without a storage tier: a fixed interval or Young/Daly's.

Every `interval` seconds of a run (counted from when the job starts computing, then from the end of
each write) a computing job writes a checkpoint of its progress as of that instant: it takes
bytes / write bandwidth. `stall`: the job makes no progress meanwhile; `overlap`: it keeps computing
at (1 - slowdown) of its speed (asynchronous checkpointing). Only a completed write counts: a failure
goes back to the last one (engine/lifecycle.py). With a storage tier, engine/traffic.py writes the
checkpoints through the storage and network model instead, with the same bookkeeping.

Young/Daly: the interval minimising expected waste for a job of failure rate 1/M and checkpoint cost
C is Daly's (2006) higher-order estimate sqrt(2CM) [1 + sqrt(C/2M)/3 + (C/2M)/9] - C for C < 2M,
else M; M comes from the job's own components (its accelerators and the nodes it spans).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Protocol

import simpy

from dcsim.engine.lifecycle import Lifecycle
from dcsim.engine.timers import call_after
from dcsim.model import Job, JobState


class CheckpointSink(Protocol):
    def set_checkpoint_factor(self, job: Job, factor: float) -> None: ...
    def _advance(self, job: Job) -> None: ...


def daly_interval(cost: float, mtbf: float) -> float:
    """Daly's optimum checkpoint interval (seconds of computing between checkpoints)."""
    if not mtbf < math.inf:
        return math.inf
    if cost <= 0:
        return 0.0
    if cost >= 2 * mtbf:
        return mtbf
    ratio = cost / (2 * mtbf)
    return math.sqrt(2 * cost * mtbf) * (1 + math.sqrt(ratio) / 3 + ratio / 9) - cost


class PeriodicCheckpoints:
    def __init__(self, env: simpy.Environment, sink: CheckpointSink, lifecycle: Lifecycle,
                 interval: Callable[[Job], float], save_seconds: Callable[[Job], float], *,
                 stall: bool = True, slowdown: float = 0.0) -> None:
        self.env = env
        self.sink = sink
        self.lifecycle = lifecycle
        self.interval = interval
        self.save_seconds = save_seconds
        self.factor = 0.0 if stall else 1.0 - slowdown

    def started(self, job: Job) -> None:
        """The job begins computing (first start or after a restore): its first checkpoint is due later."""
        self._schedule(job)

    def _schedule(self, job: Job) -> None:
        interval = self.interval(job)
        if 0 < interval < math.inf:
            call_after(self.env, interval, partial(self._due, job, job.runs))

    def _due(self, job: Job, run: int, _event: simpy.Event) -> None:
        if job.runs != run or job.state is not JobState.RUNNING or job.computing_since is None:
            return  # stopped (completed, preempted or failed) since
        now = self.env.now
        self.sink._advance(job)  # progress up to now is what the checkpoint holds
        if job.remaining <= 0:
            return
        self.lifecycle.begin_checkpoint(job, now, job.remaining, self.lifecycle.attained(job, now))
        save = self.save_seconds(job)
        if self.factor != 1.0:
            self.sink.set_checkpoint_factor(job, self.factor)
        call_after(self.env, save, partial(self._written, job, run, now))

    def _written(self, job: Job, run: int, began: float, _event: simpy.Event) -> None:
        if job.runs != run or job.state is not JobState.RUNNING:
            return  # a failure or preemption came first: this checkpoint never completed
        stalled = self.lifecycle.attained(job, self.env.now) if self.factor == 0.0 else None
        self.lifecycle.commit_checkpoint(job, stalled)
        job.checkpoints += 1
        job.checkpoint_time += self.env.now - began
        if job.checkpoint_factor != 1.0:
            self.sink.set_checkpoint_factor(job, 1.0)
        self._schedule(job)
