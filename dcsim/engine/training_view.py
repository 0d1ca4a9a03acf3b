"""The read-only views the training engine gives schedulers: SchedulerView and PreemptiveView.

A mixin of TrainingEngine, apart so that the engine module keeps to events and transitions; it reads
the engine's queue, running set and lifecycle books and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView, Mapping

import simpy

from dcsim.engine.lifecycle import Lifecycle
from dcsim.model import Cluster, Job, JobState
from dcsim.policies.base import JobView, QueuedJobView


class TrainingViews:
    env: simpy.Environment
    cluster: Cluster
    lifecycle: Lifecycle
    speeds: Mapping[tuple[str, str], float]
    startup: float
    _queue: dict[int, Job]
    _active: dict[int, Job]
    _running: dict[int, Job]
    _by_estimate: list[tuple[float, float, int]] | None
    _arrivals: list[Job]
    _exits: list[int]
    _allocation_version: int
    _candidates: dict[tuple[str, tuple[str, ...] | None], tuple[str, ...]]
    _running_ends: dict[str, list[tuple[float, int, int]]] | None
    _releasing: dict[str, int]

    def _allowed_models(self, job: Job) -> tuple[str, ...]:
        models = self.cluster.accelerator_models
        return models if job.allowed is None else tuple(m for m in models if m in job.allowed)

    # --- SchedulerView ----------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.env._now

    @property
    def free(self) -> Mapping[str, int]:
        return self.cluster.free

    def queued(self) -> Iterator[JobView]:
        return iter(self._queue.values())

    def queued_by_estimate(self) -> Iterator[QueuedJobView]:
        queue = self._queue
        if self._by_estimate is None:  # first asked: sorted now, kept sorted by the engine from then on
            self._by_estimate = sorted((job.estimate, job.submit, job.id) for job in queue.values())
        return (queue[job_id] for _, _, job_id in self._by_estimate)

    @property
    def allocation_version(self) -> int:
        return self._allocation_version

    @property
    def arrival_mark(self) -> int:
        return len(self._arrivals)

    def queued_since(self, mark: int) -> Iterator[QueuedJobView]:
        queued = JobState.QUEUED
        return (job for job in self._arrivals[mark:] if job.state is queued)

    def candidate_accelerators(self, job: QueuedJobView) -> tuple[str, ...]:
        return job.candidates  # type: ignore[attr-defined]

    def _candidate_order(self, job: Job) -> tuple[str, ...]:
        key = (job.speed_key, job.allowed)
        cached = self._candidates.get(key)
        if cached is None:
            models = self._allowed_models(job)
            order = {m: i for i, m in enumerate(models)}
            cached = tuple(sorted(models, key=lambda m: (-self.speeds[(job.speed_key, m)], order[m])))
            self._candidates[key] = cached
        return cached

    def relative_speed(self, job: QueuedJobView, accelerator: str) -> float:
        return self.speeds[(job.speed_key, accelerator)]

    def estimated_runtime(self, job: QueuedJobView, accelerator: str) -> float:
        return self.startup + job.estimate / self.speeds[(job.speed_key, accelerator)]

    def running_by_estimated_end(self, accelerator: str) -> Iterable[tuple[float, int]]:
        if self._running_ends is None:  # first asked: sorted now, kept sorted by the engine from then on
            ends: dict[str, list[tuple[float, int, int]]] = {m: [] for m in self.cluster.accelerator_models}
            for job in self._active.values():
                ends[job.accelerator].append((job.estimated_end, job.id, job.demand))  # type: ignore[index]
            for entries in ends.values():
                entries.sort()
            self._running_ends = ends
        return ((end, demand) for end, _, demand in self._running_ends[accelerator])

    # --- PreemptiveView -----------------------------------------------------------------------------
    def running(self) -> Iterator[JobView]:
        return iter(self._active.values())

    def active_ids(self) -> KeysView[int]:
        """Ids of the jobs running() yields, a live set: policies that keep books between passes
        (policies/scheduling/tiresias_books.py) see which of theirs stopped without walking them all."""
        return self._active.keys()

    @property
    def exit_mark(self) -> int:
        return len(self._exits)

    def exited_since(self, mark: int) -> list[int]:
        """Ids of the jobs that left running() since exit_mark was `mark`: books kept between passes
        drop them without comparing their whole running set with active_ids()."""
        return self._exits[mark:]

    def computing_ids(self) -> KeysView[int]:
        """Ids of the running jobs past their start-up or restore (computing), a live set."""
        return self._running.keys()

    def attained_service(self, job: JobView) -> float:
        record: Job = job  # type: ignore[assignment]  # Lifecycle.attained, inlined: a hot call
        since = record.computing_since
        if since is None:
            return record.attained
        return record.attained + record.demand * (self.env._now - since)

    def remaining_estimate(self, job: JobView) -> float:
        record: Job = job  # type: ignore[assignment]
        if record.start is None:
            return record.estimate
        remaining = record.remaining
        if record.computing_since is not None:
            remaining = max(0.0, remaining - record.rate * (self.env._now - record.progress_time))
        return max(0.0, record.estimate - (record.work - remaining))

    def time_since_start(self, job: JobView) -> float:
        record: Job = job  # type: ignore[assignment]
        return self.env._now - record.last_start if record.state is JobState.RUNNING and record.last_start is not None \
            else 0.0

    def waiting_since(self, job: JobView) -> float:
        return job.queued_since  # type: ignore[attr-defined]

    @property
    def capacity(self) -> Mapping[str, int]:
        return self.cluster.capacity

    @property
    def releasing(self) -> Mapping[str, int]:
        return self._releasing
