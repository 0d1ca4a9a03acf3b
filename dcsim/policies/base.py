"""Policy families as Protocols: one decision method each, reading a view, returning data.

The engine owns all state. A policy reads a view (the engine's own state, typed read-only here),
returns decisions, and the engine validates every decision before acting on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable


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
    def schedule(self, view: SchedulerView) -> list[StartJob]:
        """Which queued jobs to start now, in order."""
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
