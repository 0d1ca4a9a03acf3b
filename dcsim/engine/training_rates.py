"""How fast a computing training job goes, and when it will finish: a mixin of TrainingEngine.

A job's rate is its base speed (model x accelerator, spread placement) times three factors that change
independently: traffic (network and storage shares, engine/traffic.py), periodic checkpoints
(engine/checkpoints.py) and power caps (engine/power.py). On each change the remaining work is brought
up to now and the finish event replanned; the stale one is ignored by its plan version.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import simpy

from dcsim.engine.timers import StaleCalls, call_after
from dcsim.model import Job, JobState


class TrainingRates:
    env: simpy.Environment
    stale: StaleCalls
    _on_finish: Callable[[Job, int, simpy.Event], None]

    def _plan_finish(self, job: Job) -> None:
        """(Re)plan the completion event from remaining work and current rate."""
        self._void_finish(job)
        if job.rate <= 0:
            return  # stalled: replanned when the rate comes back
        delay = job.remaining / job.rate
        job.finish_call = call_after(self.env, delay, partial(self._on_finish, job, job.plan_version))

    def _void_finish(self, job: Job) -> None:
        """The planned finish no longer stands: a new version, and its queued event cancelled."""
        job.plan_version += 1
        call = job.finish_call
        if call is not None:
            job.finish_call = None
            self.stale.cancel(call)  # type: ignore[arg-type]

    def _advance(self, job: Job) -> None:
        """Bring the job's remaining work and its communication and I/O time up to now."""
        now = self.env._now
        elapsed = now - job.progress_time
        if elapsed > 0:
            job.remaining = max(0.0, job.remaining - job.rate * elapsed)
            job.comm_time += job.comm_share * elapsed
            job.io_time += job.io_share * elapsed
        job.progress_time = now

    def update_rate(self, job: Job, factor: float, comm_share: float, io_share: float) -> None:
        """The job's network or storage share changed: its speed is now base x factor."""
        if job.state is not JobState.RUNNING or job.compute_start is None:
            return
        self._advance(job)
        job.traffic_factor = factor
        rate = job.base_rate * factor * job.checkpoint_factor * job.power_factor
        job.comm_share, job.io_share = comm_share, io_share
        if rate != job.rate or job.plan_version == 0:
            job.rate = rate
            self._plan_finish(job)

    def set_checkpoint_factor(self, job: Job, factor: float) -> None:
        """A periodic checkpoint starts (the job keeps `factor` of its speed) or ends (factor 1)."""
        self._advance(job)
        job.checkpoint_factor = factor
        job.rate = job.base_rate * job.traffic_factor * factor * job.power_factor
        self._plan_finish(job)

    def set_power_factor(self, job: Job, factor: float) -> None:
        """A power cap changed (engine/power.py): the job keeps `factor` of its speed from now on."""
        if job.power_factor == factor:
            return
        job.power_factor = factor
        if job.computing_since is None or job.state is not JobState.RUNNING:
            return  # starting or restoring: the factor applies once it computes
        self._advance(job)
        job.rate = job.base_rate * job.traffic_factor * job.checkpoint_factor * factor
        self._plan_finish(job)
