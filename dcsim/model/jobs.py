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
