"""One run: owns the simpy Environment and steps it, reporting progress in simulated terms.

No wall clock here: the caller turns progress fractions into a progress bar.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from heapq import heappop
from typing import Protocol

import simpy

from dcsim.engine.serving import ServingEngine
from dcsim.engine.timers import CANCELLED, TimedCall
from dcsim.engine.training import TrainingEngine

ProgressCallback = Callable[[float], None]


class Startable(Protocol):
    def start(self) -> None: ...


class Simulation:
    def __init__(self, env: simpy.Environment, training: TrainingEngine, horizon: float | None,
                 serving: ServingEngine | None = None, failures: Startable | None = None) -> None:
        self.env = env
        self.failures = failures
        self.training = training
        self.serving = serving
        self.horizon = horizon
        self.events = 0
        self.end_time = 0.0

    def run(self, progress: ProgressCallback | None = None, every: int = 8192) -> float:
        """Process events until the horizon or until nothing is left; return the end time.

        The objects built before the run (jobs, trace, cluster) are frozen out of the cyclic garbage
        collector while it steps (gc.freeze): its full collections would otherwise walk them all again
        and again, about a tenth of a long replay. They are unfrozen after, so nothing is kept longer
        than before; a caller that froze objects itself is left as it was."""
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        try:
            return self._run(progress, every)
        finally:
            if freeze:
                gc.unfreeze()

    def _run(self, progress: ProgressCallback | None, every: int) -> float:
        env = self.env
        if self.serving is not None:
            self.serving.start()  # initial replicas take their accelerators before any job arrives
        self.training.start()
        if self.failures is not None:
            self.failures.start()
        limit = self.horizon if self.horizon is not None else math.inf
        total = len(self.training.jobs) + (len(self.serving.requests) if self.serving is not None else 0)
        steps = 0
        queue = env._queue
        stale = self.training.stale
        stale.limit = limit
        while queue:
            when, _, _, event = queue[0]
            if when == math.inf or when > limit:
                break
            if type(event) is TimedCall:  # the engines' own timed calls: Environment.step's work, inlined
                heappop(queue)
                env._now = when
                callbacks = event.callbacks
                if callbacks is CANCELLED:  # made void by a later plan (timers.StaleCalls): not an event
                    continue
                event.callbacks = None
                for callback in callbacks:
                    callback(event)
            else:
                env.step()
            steps += 1
            if progress is not None and steps % every == 0:
                progress(self._fraction(total))
        if stale.dropped_until > env._now:  # a cancelled call dropped from the heap was due last
            env._now = stale.dropped_until
        self.events = steps + self.training.inline_passes  # a pass run inline is still an event
        self.training.settle()
        # Without a horizon the run ends at its last change of state; a trailing autoscaler check that
        # found nothing to do does not lengthen it.
        self.end_time = float(limit if self.horizon is not None else self.training.levels.last_time)
        if progress is not None:
            progress(1.0)
        return self.end_time

    def _fraction(self, total: int) -> float:
        finished = self.training.finished + (self.serving.finished if self.serving is not None else 0)
        done = finished / total if total else 0.0
        if self.horizon is not None:
            return max(done, self.env.now / self.horizon)
        return done
