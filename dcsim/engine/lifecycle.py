"""Job lifecycle: queued -> starting -> computing -> {suspending -> queued | completed | failed}.

Every transition of a training job and its accounting live here, so preemption (a scheduler
decision) and failures (an engine event) share one path; they differ only in what is kept.
`suspend(job, now)`: a preemption saves a checkpoint now and keeps all progress once it is written;
`interrupt(job, now)`: a failure keeps the progress of the last completed checkpoint (periodic, or a
suspension's) and counts the rest as lost work and lost accelerator-seconds. A suspending job holds
its accelerators for the save time (checkpoint bytes / write bandwidth), then goes back to the
queue; a resumed job holds them for the restart delay plus the checkpoint read (bytes / read
bandwidth) before it computes again. A resume on another accelerator model or other nodes counts as
a migration, at the same cost.

Accounted here, never in policies: attained service (accelerator-seconds of computing), time in the
queue summed over every wait, seconds suspending and restoring, preemptions, interruptions,
migrations, lost work. The engine owns the events and the accelerators; this module owns the books.

Periodic checkpoints (engine/checkpoints.py, or engine/traffic.py through a storage tier) mark the
progress they save with begin_checkpoint and make it count with commit_checkpoint once written.
With a checkpoint tier, a suspension's checkpoint travels through the storage and network model
instead (engine/suspension_io.py; the engine holds the accelerators until it is written).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from dcsim.model import Job, JobState


@dataclass(frozen=True, slots=True)
class SuspensionCosts:
    """What suspending and resuming cost: bandwidths of checkpoint writes and reads (bytes/s, per job)
    and the restart delay of a job that gives none (the scenario's start-up time by default)."""

    write_bps: float = math.inf
    read_bps: float = math.inf
    restart_delay: float = 0.0


Segment = Callable[[Job, str, float, float], None]
"""Told of each phase a job went through while holding accelerators: (job, phase, start, end), phase
one of starting (the first start-up), restoring, computing, suspending."""


class Lifecycle:
    """The transitions of training jobs and their accounting (state lives on the Job records)."""

    def __init__(self, startup: float = 0.0, costs: SuspensionCosts | None = None,
                 segment: Segment | None = None) -> None:
        self.startup = startup
        self.costs = costs if costs is not None else SuspensionCosts(restart_delay=startup)
        self.segment = segment

    def _segment(self, job: Job, phase: str, start: float, end: float) -> None:
        if self.segment is not None and end > start:
            self.segment(job, phase, start, end)

    # --- queue --------------------------------------------------------------------------------------
    @staticmethod
    def enqueue(job: Job, now: float) -> None:
        job.state = JobState.QUEUED
        job.queued_since = job.phase_since = now

    # --- starting (first start-up or restore) -------------------------------------------------------
    def start(self, job: Job, now: float, accelerator: str, allocation: tuple[tuple[int, int], ...]) -> float:
        """The job leaves the queue on these accelerators; returns the seconds before it computes."""
        job.queue_time += now - job.queued_since
        resumed = job.start is not None
        if resumed and (accelerator != job.accelerator or _moved(allocation, job.allocation)):
            job.migrations += 1
        job.state = JobState.RUNNING
        job.accelerator = accelerator
        job.allocation = allocation
        job.last_start = job.phase_since = now
        job.runs += 1
        if job.start is None:
            job.start = now
        return self.restore_seconds(job) if resumed else self.startup

    def restore_seconds(self, job: Job) -> float:
        delay = job.restart_delay if job.restart_delay is not None else self.costs.restart_delay
        return delay + (job.checkpoint_bytes or 0.0) / self.costs.read_bps

    def _leave_starting(self, job: Job, now: float) -> None:
        if job.runs > 1:  # a restore, not the first start-up
            job.restore_time += now - job.phase_since
        self._segment(job, "restoring" if job.runs > 1 else "starting", job.phase_since, now)

    # --- computing ----------------------------------------------------------------------------------
    def compute(self, job: Job, now: float) -> None:
        self._leave_starting(job, now)
        if job.compute_start is None:
            job.compute_start = now
        job.computing_since = job.phase_since = now

    def stop_compute(self, job: Job, now: float) -> None:
        if job.computing_since is not None:
            job.attained += job.demand * (now - job.computing_since)
            self._segment(job, "computing", job.computing_since, now)
            job.computing_since = None

    @staticmethod
    def attained(job: Job, now: float) -> float:
        """Accelerator-seconds the job has computed up to `now`."""
        if job.computing_since is None:
            return job.attained
        return job.attained + job.demand * (now - job.computing_since)

    # --- suspending ---------------------------------------------------------------------------------
    def suspend(self, job: Job, now: float, *, preempted: bool = True) -> float:
        """Stop a started job (its remaining work brought up to now by the engine) to save a checkpoint
        of all its progress; return the seconds it holds its accelerators to write it. The saved point
        counts once the write completes (`suspended`): a failure meanwhile loses it."""
        computing = self._stop(job, now)
        save = 0.0
        if computing:  # a job still starting has nothing newer than what it restored
            save = (job.checkpoint_bytes or 0.0) / self.costs.write_bps
            job.pending_save = (now, job.remaining, job.attained)
        if preempted:
            job.preemptions += 1
        return save

    def interrupt(self, job: Job, now: float) -> None:
        """A failure stopped the job (started or suspending): it keeps the progress of its last completed
        checkpoint and loses the rest, counted as lost work and lost accelerator-seconds of service."""
        if job.state is JobState.RUNNING:
            self._stop(job, now)
        elif job.state is JobState.SUSPENDING:  # its checkpoint was being written: it does not count
            job.suspend_time += now - job.phase_since
            self._segment(job, "suspending", job.phase_since, now)
            job.phase_since = now
        else:
            raise ValueError(f"job {job.id} is {job.state.value}, not running")
        job.pending_save = None
        self.revert(job, now)
        job.interruptions += 1

    def revert(self, job: Job, now: float) -> None:
        """Back to the last completed checkpoint (or the very start): the work and service since are lost."""
        kept = job.saved_remaining if job.saved_at is not None else job.work
        job.lost_work += kept - job.remaining
        job.remaining = kept
        job.lost_service += job.attained - job.saved_attained
        job.saved_attained = job.attained  # attained stays billed; the loss is counted once

    def _stop(self, job: Job, now: float) -> bool:
        if job.state is not JobState.RUNNING:
            raise ValueError(f"job {job.id} is {job.state.value}, not running")
        computing = job.computing_since is not None
        if not computing:
            self._leave_starting(job, now)
        self.stop_compute(job, now)
        job.state = JobState.SUSPENDING
        job.phase_since = now
        return computing

    # --- periodic checkpoints -----------------------------------------------------------------------
    @staticmethod
    def begin_checkpoint(job: Job, now: float, remaining: float, attained: float) -> None:
        """A checkpoint of the progress as of now starts being written."""
        job.pending_save = (now, remaining, attained)

    @staticmethod
    def commit_checkpoint(job: Job, attained_now: float | None = None) -> None:
        """The checkpoint being written is complete: a later failure goes back to it. `attained_now`: the
        job stalled while writing, so the service since the snapshot was checkpoint overhead, not work a
        later failure could lose (it is counted as checkpoint time instead)."""
        if job.pending_save is not None:
            job.saved_at, job.saved_remaining, attained = job.pending_save
            job.saved_attained = max(job.saved_attained, attained if attained_now is None else attained_now)
            job.pending_save = None

    def suspended(self, job: Job, now: float) -> None:
        """The checkpoint is saved and the accelerators are free: the job waits again."""
        self.commit_checkpoint(job)
        job.suspend_time += now - job.phase_since
        self._segment(job, "suspending", job.phase_since, now)
        self.enqueue(job, now)

    # --- the end ------------------------------------------------------------------------------------
    def finish(self, job: Job, now: float, state: JobState) -> None:
        """Completed or failed: stop the clocks."""
        if job.computing_since is None and job.state is JobState.RUNNING:
            self._leave_starting(job, now)
        self.stop_compute(job, now)
        job.state = state
        job.end = now

    def settle(self, job: Job, now: float) -> None:
        """At the horizon: bring a job's attained service and overheads up to now (it stays as it is)."""
        if job.computing_since is not None:
            self.stop_compute(job, now)
            job.computing_since = now
        elif job.state is JobState.RUNNING:
            self._leave_starting(job, now)
            job.phase_since = now
        elif job.state is JobState.SUSPENDING:
            job.suspend_time += now - job.phase_since
            self._segment(job, "suspending", job.phase_since, now)
            job.phase_since = now
        elif job.state is JobState.QUEUED:
            job.queue_time += now - job.queued_since
            job.queued_since = now


def _nodes(allocation: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    return tuple(sorted(node for node, _ in allocation))


def _moved(allocation: tuple[tuple[int, int], ...], before: tuple[tuple[int, int], ...]) -> bool:
    """Whether the job's set of nodes changed (one node each: compared without sorting)."""
    if len(allocation) == 1 and len(before) == 1:
        return allocation[0][0] != before[0][0]
    return _nodes(allocation) != _nodes(before)
