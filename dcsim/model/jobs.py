"""Training jobs: passive records the engine updates and policies read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"  # stopped by the simulation (e.g. a checkpoint that did not fit); see `reason`
    SUSPENDING = "suspending"  # saving a checkpoint before going back to the queue (engine/lifecycle.py)


@dataclass(slots=True, eq=False)
class Job:
    """A gang-scheduled training job.

    `work` is seconds of computation on `demand` accelerators of the reference type; on another type
    it progresses at `relative_speed` reference-seconds per second (fluid progress, DESIGN rule 5).
    `estimate` is what the user told the scheduler (work x estimate error), also in reference seconds.
    """

    id: int
    name: str
    submit: float
    demand: int
    model: str
    work: float
    estimate: float
    allowed: tuple[str, ...] | None = None  # accelerator models the job may use; None = any
    state: JobState = JobState.QUEUED
    accelerator: str | None = None
    allocation: tuple[tuple[int, int], ...] = ()  # (node id, accelerators) pairs
    start: float | None = None
    compute_start: float | None = None
    end: float | None = None
    remaining: float = 0.0
    rate: float = 0.0  # reference seconds of work per second, now
    base_rate: float = 0.0  # the rate on an idle network and storage
    plan_version: int = 0
    finish_call: object = None  # the queued finish event of the current plan (engine/timers.py), to cancel
    estimated_end: float = 0.0
    reason: str = ""
    candidates: tuple[str, ...] = ()  # allowed models present in the cluster, fastest first (set on submit)
    # Network and storage (engine/traffic.py): progress is piecewise linear between rate changes.
    progress_time: float = 0.0  # when `remaining` was last brought up to date
    comm_share: float = 0.0  # share of wall time currently spent in exposed communication
    io_share: float = 0.0  # share currently lost to input streaming or a stalled checkpoint
    comm_time: float = 0.0  # accumulated seconds of exposed communication
    io_time: float = 0.0  # accumulated seconds lost to I/O
    checkpoints: int = 0
    # Lifecycle (engine/lifecycle.py): who the job belongs to, what a suspension costs, what it cost.
    tenant: str = ""
    priority: int = 0
    checkpoint_bytes: float | None = None  # written when suspended, read back when resumed; None: scenario's
    restart_delay: float | None = None  # before a resumed job computes again; None: the start-up time
    attained: float = 0.0  # accelerator-seconds of computing up to `computing_since`
    computing_since: float | None = None  # start of the current computing interval (None: not computing)
    last_start: float | None = None  # when the current (or last) run was started
    phase_since: float = 0.0  # when the job entered its current phase
    queued_since: float = 0.0
    queue_time: float = 0.0  # every wait in the queue, summed
    suspend_time: float = 0.0  # holding accelerators while saving checkpoints for a suspension
    restore_time: float = 0.0  # holding accelerators while restarting and reading checkpoints back
    preemptions: int = 0
    migrations: int = 0
    lost_work: float = 0.0  # reference seconds of work redone after suspensions that kept less progress
    runs: int = 0  # starts so far; stale start-up events compare against it
    saved_at: float | None = None  # when the progress last saved was reached (a completed checkpoint)
    saved_remaining: float = 0.0  # `remaining` as of `saved_at`
    saved_attained: float = 0.0  # `attained` as of `saved_at`
    pending_save: tuple[float, float, float] | None = None  # (at, remaining, attained) of a checkpoint being written
    # Failures (engine/failures.py): interruptions, what they cost, and periodic checkpoints.
    interruptions: int = 0
    lost_service: float = 0.0  # accelerator-seconds of computing thrown away by failures
    checkpoint_time: float = 0.0  # seconds spent writing periodic checkpoints
    checkpoint_factor: float = 1.0  # speed kept while a periodic checkpoint is written (0: the job stalls)
    batch_size: float | None = None  # samples per accelerator per step; None: the model's median measured batch

    @property
    def speed_key(self) -> str:
        """What its speed per accelerator model is keyed by: the model type, with the batch when given."""
        return self.model if self.batch_size is None else f"{self.model}@{self.batch_size:g}"
    traffic_factor: float = 1.0  # speed kept on the network and storage (engine/traffic.py)
    # Power policies (engine/power.py): speed kept under an accelerator power cap; deferral.
    power_factor: float = 1.0
    deadline: float | None = None  # seconds since run start by which a deferrable job should complete
    deferrable: bool = False  # a power policy may hold it back (carbon-aware deferral) until its deadline allows
