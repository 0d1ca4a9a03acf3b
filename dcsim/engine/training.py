"""Training jobs on the cluster: arrivals, scheduling passes, placement, fluid progress, completion.

Events happen only where state changes: an arrival, the end of a job's start-up, a completion, and
scheduling passes, requested by changes and coalesced per instant (training_passes.py, which also
runs a pass due next at once). A job's finish event is planned from its
remaining work and rate; when a rate changes the plan is versioned and the stale event ignored.
The engine is also the read-only view policies see (SchedulerView, PreemptiveView). Scheduler
decisions are StartJob, PreemptJob and NextPass, each validated here; the job's transitions and
their accounting (suspend, resume, attained service) are in engine/lifecycle.py, rates and finish
plans in training_rates.py. Hot paths (long replays make hundreds of thousands of events) read simpy's
clock as `env._now` and plan events with timers.call_after rather than Timeout objects.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from itertools import chain

import simpy

from dcsim.engine.levels import LevelBoard
from dcsim.engine.lifecycle import Lifecycle
from dcsim.engine.timers import StaleCalls, TimedCall, call_after
from dcsim.engine.training_decisions import TrainingDecisions
from dcsim.engine.training_passes import TrainingPasses
from dcsim.engine.training_ports import CheckpointTransfers, JobCheckpoints, JobTraffic
from dcsim.engine.training_rates import TrainingRates
from dcsim.engine.training_view import TrainingViews
from dcsim.metrics.protocol import Recorder
from dcsim.model import Cluster, Job, JobState
from dcsim.policies.base import (
    Placement,
    TrainingScheduler,
)

PlacementSpeed = Callable[[str, str, int, int], float]
"""(model, accelerator, accelerators, nodes spanned) -> speed multiplier of a spread placement (<= 1)."""


class TrainingEngine(TrainingViews, TrainingDecisions, TrainingRates, TrainingPasses):
    def __init__(
        self, env: simpy.Environment, cluster: Cluster, jobs: Sequence[Job], scheduler: TrainingScheduler,
        placement: Placement, speeds: Mapping[tuple[str, str], float], recorder: Recorder,
        startup: float = 0.0, placement_speed: PlacementSpeed | None = None, levels: LevelBoard | None = None,
        traffic: JobTraffic | None = None, largest_gang: Mapping[str, int] | None = None,
        lifecycle: Lifecycle | None = None, quotas: Mapping[str, int] | None = None,
    ) -> None:
        self.env = env
        self.stale = StaleCalls(env)  # cancels finish and round events that later plans made void
        self.lifecycle = lifecycle if lifecycle is not None else Lifecycle(startup, segment=recorder.job_segment)
        self.traffic = traffic
        self.largest_gang = dict(largest_gang or cluster.capacity)  # per model: the most one job may get
        self.placement_speed = placement_speed
        self.cluster = cluster
        self.jobs = jobs
        self.scheduler = scheduler
        self.placement = placement
        self.speeds = speeds
        self.recorder = recorder
        self.startup = startup
        self._queue: dict[int, Job] = {}
        # Kept sorted only once a policy asks for them (training_view.py): most never do.
        self._by_estimate: list[tuple[float, float, int]] | None = None
        self._running_ends: dict[str, list[tuple[float, int, int]]] | None = None
        self.levels = levels if levels is not None else LevelBoard(cluster, recorder)
        self.on_release: Callable[[], None] | None = None  # called after a job returns accelerators
        self.on_queue: Callable[[], None] | None = None  # called when a job starts waiting
        self._candidates: dict[tuple[str, tuple[str, ...] | None], tuple[str, ...]] = {}
        self._pass_pending = False
        self._pass_call: object = None  # the queued event of the pending pass (timers.call_after)
        self.inline_passes = 0  # passes run right after the pass that requested them (_run_pass)
        self._arrivals: list[Job] = []  # every queued job in arrival order, never shrinks
        self._exits: list[int] = []  # ids of jobs as they leave the running set (_active), never shrinks
        self._allocation_version = 0
        self._next_arrival = 0
        self.completed = 0
        self.rejected = 0
        self.failed = 0
        self._running: dict[int, Job] = {}  # computing
        self._active: dict[int, Job] = {}  # holding accelerators and not suspending: starting or computing
        self._suspending: dict[int, Job] = {}
        self._releasing: dict[str, int] = dict.fromkeys(cluster.accelerator_models, 0)
        self._round_call: TimedCall | None = None  # the queued round of the latest NextPass
        self._round_due = False
        self._pass_time, self._passes_now = -1.0, 0
        self.quotas: Mapping[str, int] = dict(quotas or {})  # guaranteed accelerators per tenant (view)
        self._interrupted: set[int] = set()  # stopped by a failure, not yet back in the queue
        self.requeue_front = True  # an interrupted job goes to the head of the queue (failures.requeue)
        self.checkpoints: JobCheckpoints | None = None  # periodic checkpoints without a storage tier
        self.suspension_io: CheckpointTransfers | None = None  # suspensions' checkpoints through a tier
        self.release_time: Callable[[Job], float] | None = None  # deferral by a power policy (engine/power.py)
        self.deferred = 0

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._emit_levels()
        self._schedule_next_arrival()

    @property
    def finished(self) -> int:
        return self.completed + self.rejected + self.failed

    def holding(self) -> Iterator[Job]:
        """Jobs holding accelerators: starting, computing or suspending."""
        return chain(self._active.values(), self._suspending.values())

    def waiting(self) -> bool:
        """Whether jobs wait in the queue."""
        return bool(self._queue)

    def _schedule_next_arrival(self) -> None:
        if self._next_arrival < len(self.jobs):
            delay = max(0.0, self.jobs[self._next_arrival].submit - self.env._now)
            call_after(self.env, delay, self._on_arrival)

    def _on_arrival(self, _event: simpy.Event) -> None:
        now = self.env._now
        while self._next_arrival < len(self.jobs) and self.jobs[self._next_arrival].submit <= now:
            job = self.jobs[self._next_arrival]
            release = self.release_time(job) if self.release_time is not None and job.deferrable else now
            if release > now:  # held back by a power policy (carbon-aware deferral): it waits unseen
                self.recorder.job_submitted(job)
                self.deferred += 1
                call_after(self.env, release - now, partial(self._on_release, job))
            else:
                self._submit(job)
            self._next_arrival += 1
        self._schedule_next_arrival()
        self._emit_or_pass()  # after the next arrival is queued, as simpy would run the pass

    def _on_release(self, job: Job, _event: simpy.Event) -> None:
        self._submit(job, recorded=True)
        self._emit_levels()

    def _submit(self, job: Job, recorded: bool = False) -> None:
        if not recorded:
            self.recorder.job_submitted(job)
        if not self._feasible(job):
            job.state = JobState.REJECTED
            job.reason = self._infeasible_reason(job)
            self.rejected += 1
            self.recorder.job_rejected(job)
            return
        job.candidates = self._candidate_order(job)
        self.lifecycle.enqueue(job, self.env._now)
        self._queue[job.id] = job
        self._arrivals.append(job)
        if self._by_estimate is not None:
            bisect.insort(self._by_estimate, (job.estimate, job.submit, job.id))
        self._request_pass()
        if self.on_queue is not None:
            self.on_queue()

    def _feasible(self, job: Job) -> bool:
        return any(self.largest_gang[m] >= job.demand for m in self._allowed_models(job))

    def _infeasible_reason(self, job: Job) -> str:
        allowed = self._allowed_models(job)
        if not allowed:
            return f"needs {'/'.join(job.allowed or ())}, which the cluster does not have"
        largest = max(self.largest_gang[m] for m in allowed)
        if largest < max(self.cluster.capacity[m] for m in allowed):
            return (f"needs {job.demand} accelerators; the largest connected partition of the network has {largest} "
                    "of any model it may use")
        return f"needs {job.demand} accelerators; the cluster has at most {largest} of any model it may use"

    # --- running jobs ---------------------------------------------------------------------------
    def _start(self, job: Job, accelerator: str, allocation: tuple[tuple[int, int], ...]) -> None:
        now = self.env._now
        self._allocation_version += 1
        first = job.start is None
        delay = self.lifecycle.start(job, now, accelerator, allocation)
        job.base_rate = self.speeds[(job.speed_key, accelerator)]
        if self.placement_speed is not None:
            job.base_rate *= self.placement_speed(job.model, accelerator, job.demand, len(allocation))
        job.rate = job.base_rate * job.power_factor
        job.checkpoint_factor = job.traffic_factor = 1.0
        if first:
            job.remaining = job.work
            job.estimated_end = now + self.estimated_runtime(job, accelerator)
        else:
            job.estimated_end = now + delay + self.remaining_estimate(job) / self.speeds[(job.speed_key, accelerator)]
        if self._running_ends is not None:
            bisect.insort(self._running_ends[accelerator], (job.estimated_end, job.id, job.demand))
        self._active[job.id] = job
        self.recorder.job_started(job)
        if not first and self.suspension_io is not None and job.saved_at is not None:
            call_after(self.env, delay, partial(self._read_back, job, job.runs))
        elif delay > 0:
            call_after(self.env, delay, partial(self._on_compute_start, job, job.runs))
        else:
            self._begin_compute(job)

    def _read_back(self, job: Job, run: int, _event: simpy.Event) -> None:
        """After the restart delay, the checkpoint comes back from the tier before the job computes."""
        if job.runs != run or job.state is not JobState.RUNNING:
            return
        assert self.suspension_io is not None
        if not self.suspension_io.read(job, partial(self._on_compute_start, job, run, None)):
            self._on_compute_start(job, run, None)

    def _on_compute_start(self, job: Job, run: int, _event: simpy.Event | None) -> None:
        if job.runs != run or job.state is not JobState.RUNNING:
            return  # suspended while starting
        self._begin_compute(job)
        self._emit_levels()

    def _begin_compute(self, job: Job) -> None:
        self.lifecycle.compute(job, self.env._now)
        job.progress_time = self.env._now
        self.levels.training_busy[job.accelerator] += job.demand  # type: ignore[index]
        self._running[job.id] = job
        if self.checkpoints is not None:
            self.checkpoints.started(job)
        if self.traffic is not None:
            self.traffic.started(job)  # sets the rate (update_rate), which plans the finish
        else:
            self._plan_finish(job)

    def waiting_jobs(self) -> Iterator[tuple[int, tuple[str, ...]]]:
        """Queued jobs in queue order: (accelerators wanted, usable models fastest first); for idle shutdown."""
        return ((job.demand, job.candidates) for job in self._queue.values())

    def running_jobs(self) -> Iterator[Job]:
        """Jobs computing now (for the power governor)."""
        return iter(self._running.values())

    def settle(self) -> None:
        """At the end of a run: bring running jobs' progress, time shares and lifecycle books up to now."""
        for job in self._running.values():
            self._advance(job)
        now = self.env._now
        for job in chain(self._active.values(), self._suspending.values(), self._queue.values()):
            self.lifecycle.settle(job, now)

    def suspend(self, job: Job, *, preempted: bool = True) -> None:
        """Stop a started job and send it back to the queue once its checkpoint is saved (lifecycle.py);
        its accelerators stay allocated until then. Used by PreemptJob."""
        self._take_off(job)
        save = self.lifecycle.suspend(job, self.env._now, preempted=preempted)
        io = self.suspension_io
        if io is not None and job.pending_save is not None \
                and io.write(job, partial(self._on_saved, job, job.runs, job.interruptions, None)):
            return  # held until the checkpoint has crossed the network to the tier
        self._hold(job, save)

    def interrupt(self, job: Job, hold: float) -> None:
        """A failure stopped the job (engine/failures.py): it goes back to its last completed checkpoint
        and holds its accelerators `hold` seconds (detection) before they are freed and it waits again.
        A job already suspending loses the checkpoint it was writing and lets go at once."""
        self._interrupted.add(job.id)
        if job.state is JobState.SUSPENDING:
            self.lifecycle.interrupt(job, self.env._now)
            self._release_suspended(job)
            return
        self._take_off(job)
        self.lifecycle.interrupt(job, self.env._now)
        self._hold(job, hold)

    def _take_off(self, job: Job) -> None:
        """Bring the job up to now and off the running books (it keeps its accelerators)."""
        computing = job.computing_since is not None
        if computing:
            self._advance(job)
        self._void_finish(job)  # the planned finish is void
        accelerator = job.accelerator
        assert accelerator is not None
        del self._active[job.id]
        self._exits.append(job.id)
        if computing:
            del self._running[job.id]
            self.levels.training_busy[accelerator] -= job.demand
            if self.traffic is not None:
                self.traffic.stopped(job)
        if self._running_ends is not None:
            ends = self._running_ends[accelerator]
            del ends[bisect.bisect_left(ends, (job.estimated_end, job.id, job.demand))]
        self._allocation_version += 1
        self._suspending[job.id] = job
        self._releasing[accelerator] += job.demand

    def _hold(self, job: Job, seconds: float) -> None:
        if seconds > 0:
            call_after(self.env, seconds, partial(self._on_saved, job, job.runs, job.interruptions))
        else:
            self._release_suspended(job)

    def _on_saved(self, job: Job, run: int, interruptions: int, _event: simpy.Event | None) -> None:
        if job.runs != run or job.interruptions != interruptions or job.id not in self._suspending:
            return  # a failure cut the save short and freed the accelerators already
        self._release_suspended(job)
        self._emit_levels()

    def _release_suspended(self, job: Job) -> None:
        accelerator = job.accelerator
        assert accelerator is not None
        self.cluster.release_all(job.allocation)
        self._releasing[accelerator] -= job.demand
        del self._suspending[job.id]
        self.lifecycle.suspended(job, self.env._now)
        self._allocation_version += 1
        if job.id in self._interrupted and self.requeue_front:  # a failed job keeps its place at the head
            self._queue = {job.id: job, **self._queue}
        else:
            self._queue[job.id] = job
        self._interrupted.discard(job.id)
        self._arrivals.append(job)
        if self._by_estimate is not None:
            bisect.insort(self._by_estimate, (job.estimate, job.submit, job.id))
        if self.on_release is not None:
            self.on_release()
        if self.on_queue is not None:
            self.on_queue()
        self._request_pass()

    def fail(self, job: Job, reason: str) -> None:
        """Stop a running job for good (e.g. its checkpoint did not fit); it keeps the reason."""
        self._advance(job)
        self._void_finish(job)
        job.reason = reason
        self.lifecycle.finish(job, self.env._now, JobState.FAILED)
        self.failed += 1
        self._end(job)

    def _on_finish(self, job: Job, version: int, _event: simpy.Event) -> None:
        if version != job.plan_version:
            return  # superseded by a later plan (cancelled calls do not run: kept as a guard)
        job.finish_call = None
        self._advance(job)
        job.remaining = 0.0
        self.lifecycle.finish(job, self.env._now, JobState.COMPLETED)
        self.completed += 1
        self._end(job, event=True)

    def _end(self, job: Job, event: bool = False) -> None:
        """Return a job's accelerators (it completed or failed). `event`: called by the completion's own
        event, which may run the pass it requests at once (_emit_or_pass)."""
        accelerator = job.accelerator
        assert accelerator is not None
        self._allocation_version += 1
        job.end = self.env._now
        self._running.pop(job.id, None)
        if self._active.pop(job.id, None) is not None:
            self._exits.append(job.id)
        if self.traffic is not None:
            self.traffic.stopped(job)
        self.cluster.release_all(job.allocation)
        if self._running_ends is not None:
            ends = self._running_ends[accelerator]
            del ends[bisect.bisect_left(ends, (job.estimated_end, job.id, job.demand))]
        self.levels.training_busy[accelerator] -= job.demand
        self.recorder.job_finished(job)
        if event and self.on_release is None:
            if self._queue:
                self._request_pass()
            self._emit_or_pass()
            return
        self._emit_levels()
        if self.on_release is not None:
            self.on_release()
        if self._queue:
            self._request_pass()

    def _emit_levels(self) -> None:
        self.levels.training_queue = len(self._queue)
        self.levels.emit(self.env._now)

    emit_levels = _emit_levels  # for the failure process, after capacity left or came back

    def capacity_changed(self) -> None:
        """Another engine took or returned accelerators: policies must not reuse a cached view."""
        self._allocation_version += 1
        if self._queue:
            self._request_pass()
