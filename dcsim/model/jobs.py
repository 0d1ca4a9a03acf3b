"""Training jobs: passive records the engine updates and policies read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    REJECTED = "rejected"


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
    rate: float = 0.0
    plan_version: int = 0
    estimated_end: float = 0.0
    reason: str = ""
    candidates: tuple[str, ...] = ()  # allowed models present in the cluster, fastest first (set on submit)
