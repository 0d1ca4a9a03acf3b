"""Policy families as Protocols: one decision method each, reading a view, returning data.

The engine owns all state. A policy reads a view (the engine's own state, typed read-only here),
returns decisions, and the engine validates every decision before acting on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable


class QueuedJobView(Protocol):
    """What a policy may read of a job."""

    @property
    def id(self) -> int: ...
    @property
    def submit(self) -> float: ...
    @property
    def demand(self) -> int: ...
    @property
    def model(self) -> str: ...
    @property
    def estimate(self) -> float: ...
    @property
    def speed_key(self) -> str: ...  # model type, with the batch size when the job gives one


class JobView(QueuedJobView, Protocol):
    """What a preemptive policy may read of a job, queued or running (PreemptiveView)."""

    @property
    def tenant(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def preemptions(self) -> int: ...
    @property
    def accelerator(self) -> str | None:
        """The model it runs on (running jobs) or last ran on; None if it never started."""
        ...


class SchedulerView(Protocol):
    """Read-only view of the queue and the cluster for a training scheduler."""

    @property
    def now(self) -> float: ...
    @property
    def free(self) -> Mapping[str, int]: ...
    def queued(self) -> Iterator[QueuedJobView]:
        """Waiting jobs in arrival order."""
        ...
    def queued_by_estimate(self) -> Iterator[QueuedJobView]:
        """Waiting jobs by estimated work, shortest first (ties by arrival)."""
        ...
    def candidate_accelerators(self, job: QueuedJobView) -> Sequence[str]:
        """Accelerator models the job may run on that exist in the cluster, fastest first."""
        ...
    def relative_speed(self, job: QueuedJobView, accelerator: str) -> float: ...
    def estimated_runtime(self, job: QueuedJobView, accelerator: str) -> float:
        """Seconds the job would hold accelerators of that model, by its user estimate (start-up included)."""
        ...
    @property
    def allocation_version(self) -> int:
        """Counts job starts and completions; equal values mean the running set has not changed."""
        ...
    @property
    def arrival_mark(self) -> int:
        """How many jobs have been queued so far; pass to queued_since() to get the later ones."""
        ...
    def queued_since(self, mark: int) -> Iterator[QueuedJobView]:
        """Waiting jobs that arrived after `arrival_mark` was `mark`, in arrival order."""
        ...
    def running_by_estimated_end(self, accelerator: str) -> Iterable[tuple[float, int]]:
        """(estimated end time, accelerators held) of running jobs on that model, earliest first."""
        ...


class PreemptiveView(SchedulerView, Protocol):
    """What preemptive and round-based schedulers read besides SchedulerView (the engine provides both)."""

    def running(self) -> Iterator[JobView]:
        """Jobs holding accelerators (starting, restoring or computing), in start order; not those suspending."""
        ...
    def queued(self) -> Iterator[JobView]:
        """Waiting jobs in the order they (re-)entered the queue."""
        ...
    def attained_service(self, job: JobView) -> float:
        """Accelerator-seconds the job has computed so far (restoring and saving excluded)."""
        ...
    def remaining_estimate(self, job: JobView) -> float:
        """Estimated work left in reference seconds: the estimate minus the work done (>= 0)."""
        ...
    def time_since_start(self, job: JobView) -> float:
        """Seconds since a running job was last started (0 for a queued job)."""
        ...
    def waiting_since(self, job: JobView) -> float:
        """When a queued job last entered the queue."""
        ...
    @property
    def capacity(self) -> Mapping[str, int]:
        """Accelerators per model in the cluster."""
        ...
    @property
    def releasing(self) -> Mapping[str, int]:
        """Accelerators per model held by suspending jobs: free once their checkpoints are saved."""
        ...
    @property
    def quotas(self) -> Mapping[str, int]:
        """Accelerators guaranteed to each declared tenant (scenario tenancy), any model."""
        ...


class ClusterView(Protocol):
    """Read-only view of nodes and free accelerators for a placement policy."""

    @property
    def free_on(self) -> Sequence[int]: ...
    @property
    def max_node_size(self) -> Mapping[str, int]: ...
    def nodes_with_free(self, accelerator: str, free: int) -> Sequence[int]: ...
    @property
    def groups(self) -> Sequence[tuple[str, ...]]:
        """Per node id, network locality labels from coarse to fine (() without a topology); nodes that
        share a label are close. A coarsest label "partition-<i>" marks islands a job must not span."""
        ...


@dataclass(frozen=True, slots=True)
class StartJob:
    """Scheduler decision: start this queued job now on accelerators of this model."""

    job_id: int
    accelerator: str


@dataclass(frozen=True, slots=True)
class PreemptJob:
    """Scheduler decision: suspend this running job (checkpoint saved, progress kept); it queues again
    and its accelerators are free once the checkpoint is written."""

    job_id: int


@dataclass(frozen=True, slots=True)
class NextPass:
    """Scheduler decision: call me again after `after` seconds (a round), even if nothing else happens.
    Only the latest request stands; arrivals and completions still call the scheduler as usual."""

    after: float


Decision = StartJob | PreemptJob | NextPass

PlannedPass = tuple[list[JobView], list[tuple[JobView, str]], float | None]
"""A pass as built-in schedulers plan it (`plan_pass`): the running jobs to preempt, the queued jobs to
start with their accelerator model, and the delay of the next pass (NextPass) or None, each in order."""

TRUSTED_SCHEDULERS: set[type] = set()
"""Built-in scheduler classes whose `plan_pass` the training engine applies without building and
checking Decision objects (a long replay makes hundreds of thousands): they make only decisions the
checks would pass. Exact classes: a subclass, or any plug-in, goes through `schedule` and the checks."""


_Class = TypeVar("_Class", bound=type)


def trusted_scheduler(cls: _Class) -> _Class:
    """Class decorator for built-in schedulers with a `plan_pass(view) -> PlannedPass` (see above)."""
    TRUSTED_SCHEDULERS.add(cls)
    return cls


TRUSTED_PLACEMENTS: set[type] = set()
"""Built-in placement classes whose answers the engine takes without checking them: given a model with
at least the demand free (the engine checks that first), they return distinct nodes of that model,
each within its free count, summing to the demand. Exact classes, as TRUSTED_SCHEDULERS."""


def trusted_placement(cls: _Class) -> _Class:
    """Class decorator for built-in placements (see TRUSTED_PLACEMENTS)."""
    TRUSTED_PLACEMENTS.add(cls)
    return cls


def decisions_of(planned: PlannedPass) -> list[Decision]:
    """A planned pass as the Decision list `schedule` returns: preemptions, starts, then the next pass."""
    preempt, starts, after = planned
    decisions: list[Decision] = [PreemptJob(job.id) for job in preempt]
    decisions += [StartJob(job.id, model) for job, model in starts]
    if after is not None:
        decisions.append(NextPass(after))
    return decisions


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    job_id: int
    demand: int
    accelerator: str


Allocation = tuple[tuple[int, int], ...]
"""Placement decision: (node id, accelerators on that node) pairs summing to the demand."""


class Policy(Protocol):
    family: ClassVar[str]
    name: ClassVar[str]

    def get_params(self) -> dict[str, Any]: ...


@runtime_checkable
class TrainingScheduler(Protocol):
    family: ClassVar[str]
    name: ClassVar[str]

    def get_params(self) -> dict[str, Any]: ...
    def schedule(self, view: SchedulerView) -> Sequence[Decision]:
        """Which queued jobs to start now, in order; preemptive policies may also return PreemptJob and
        NextPass (they get a PreemptiveView). Decisions apply in order: a start must fit in what is
        free once the earlier decisions are applied."""
        ...


@runtime_checkable
class Placement(Protocol):
    family: ClassVar[str]
    name: ClassVar[str]

    def get_params(self) -> dict[str, Any]: ...
    def place(self, request: PlacementRequest, view: ClusterView) -> Allocation:
        """Which nodes, and how many accelerators on each, for a job that the scheduler started."""
        ...


class PolicyBase:
    """Shared plumbing: parameters are the keyword-only constructor arguments, stored by name."""

    family: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def get_params(self) -> dict[str, Any]:
        from dcsim.policies.registry import constructor_params

        return {param: getattr(self, param) for param in constructor_params(type(self))}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{self.name}({params})"


def first_fit_accelerator(view: SchedulerView, job: QueuedJobView, free: Mapping[str, int]) -> str | None:
    """The fastest allowed accelerator model with enough free accelerators, or None."""
    for accelerator in view.candidate_accelerators(job):
        if free[accelerator] >= job.demand:
            return accelerator
    return None
