"""What preemptive schedulers share: walk jobs in priority order, keep what fits, preempt the rest.

`plan` takes running and queued jobs in the policy's order (highest priority first) and fills each
accelerator model's budget (free + held by running jobs + being released by suspensions) greedily: a
running job that still fits keeps its accelerators, a queued job that fits is meant to run, a
running job that no longer fits is preempted. Queued jobs start now only where accelerators are free
now; the rest start in the pass the engine runs when the preempted jobs' checkpoints are saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dcsim.policies.base import Decision, JobView, PreemptiveView, PreemptJob, StartJob


def budget(view: PreemptiveView) -> dict[str, int]:
    """Accelerators per model that training jobs hold or may take now or once suspensions end."""
    total = {m: view.free[m] + view.releasing[m] for m in view.free}
    for job in view.running():
        total[job.accelerator] += job.demand  # type: ignore[index]
    return total


def plan(view: PreemptiveView, ordered: Iterable[JobView]) -> list[Decision]:
    """Preempt running jobs that do not fit below higher-priority ones; start queued jobs that fit now."""
    preempt, starts = plan_jobs(view, ordered)
    return [*(PreemptJob(job.id) for job in preempt), *(StartJob(job.id, model) for job, model in starts)]


def plan_jobs(view: PreemptiveView, ordered: Iterable[JobView]) -> tuple[list[JobView], list[tuple[JobView, str]]]:
    """plan's decisions as jobs: (running jobs to preempt, (queued job, model) to start), each in order."""
    left = budget(view)
    free = dict(view.free)
    preempt: list[JobView] = []
    starts: list[tuple[JobView, str]] = []
    running = {job.id for job in view.running()}
    for job in ordered:
        if job.id in running:
            model = job.accelerator
            assert model is not None
            if left[model] >= job.demand:
                left[model] -= job.demand
            else:
                preempt.append(job)
            continue
        for model in view.candidate_accelerators(job):
            if left[model] >= job.demand:
                left[model] -= job.demand
                if free[model] >= job.demand:
                    free[model] -= job.demand
                    starts.append((job, model))
                break
    return preempt, starts


def all_jobs(view: PreemptiveView) -> list[JobView]:
    """Running jobs, then queued ones (a stable base order before a policy sorts by its key)."""
    return [*view.running(), *view.queued()]


def round_boundary(now: float, length: float) -> float:
    """Seconds from `now` to the next multiple of `length` (a whole round if `now` is on one)."""
    after = length - now % length
    return after if after > 1e-9 * length else after + length


def check_round(value: float, name: str = "round") -> None:
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value}")


def ids(decisions: Sequence[Decision]) -> list[int]:
    return [d.job_id for d in decisions if isinstance(d, StartJob | PreemptJob)]
