"""What the hardware cannot do, applied to the workload before the engine sees it (issue 15).

- Training jobs are limited to the accelerator models whose memory holds their training state
  (calibration/memory.py); a job no model can hold is rejected by the engine with that reason.
- Requests longer than their service model's context are left out and counted, or truncated when
  the service says `context_overflow: truncate`.
"""

from __future__ import annotations

from dcsim.calibration import Calibration
from dcsim.calibration.memory import training_memory_problem
from dcsim.catalog import ModelSpec
from dcsim.errors import CalibrationError
from dcsim.model import Cluster, Job, Request
from dcsim.workload import WorkloadReport


def restrict_to_memory(jobs: list[Job], cluster: Cluster, calibration: Calibration) -> int:
    """Narrow each job's allowed accelerator models to those that hold its training state; returns how
    many jobs no model of the cluster can hold (the engine rejects them, their reason saying why)."""
    infeasible = 0
    checked: dict[tuple[str, int], tuple[tuple[str, ...], str]] = {}
    for job in jobs:
        key = (job.model, job.demand)
        if key not in checked:
            checked[key] = _feasible_models(job.model, job.demand, cluster, calibration)
        feasible, problem = checked[key]
        candidates = [m for m in cluster.accelerator_models if job.allowed is None or m in job.allowed]
        allowed = tuple(m for m in candidates if m in feasible)
        if len(allowed) == len(candidates):
            continue
        if not allowed:
            infeasible += 1
            # No model holds it: the engine rejects a job whose allowed models the cluster lacks and says
            # "needs <allowed>, which the cluster does not have"; the text below makes that the reason.
            job.allowed = (f"more accelerator memory ({problem})",)
        else:
            job.allowed = allowed
    return infeasible


def _feasible_models(model: str, demand: int, cluster: Cluster,
                     calibration: Calibration) -> tuple[tuple[str, ...], str]:
    try:
        spec = calibration.training.spec(model)
    except CalibrationError:
        return tuple(cluster.accelerator_models), ""  # generic: no parameter count to check
    problems = {m: training_memory_problem(spec, cluster.specs[m], demand) for m in cluster.accelerator_models}
    feasible = tuple(m for m, problem in problems.items() if problem is None)
    first = next((problem for problem in problems.values() if problem is not None), "")
    return feasible, first


def context_problem_reason(model: ModelSpec) -> str:
    return f"prompt + output longer than {model.name}'s context ({model.context} tokens)"


def limit_context(requests: list[Request], report: WorkloadReport, model: ModelSpec,
                  truncate: bool) -> list[Request]:
    """Requests that fit the model's context: longer ones are counted in `report` and left out, or cut
    (prompt first kept whole up to the context less one output token, then the output to what remains)."""
    context = model.context
    if context is None:
        return requests
    kept: list[Request] = []
    over: list[int] = []
    for number, request in enumerate(requests, start=1):
        if request.prompt_tokens + request.output_tokens <= context:
            kept.append(request)
            continue
        over.append(number)
        if truncate:
            request.prompt_tokens = min(request.prompt_tokens, context - 1)
            request.output_tokens = min(request.output_tokens, context - request.prompt_tokens)
            kept.append(request)
    if truncate and over:
        reason = f"truncated to {model.name}'s context ({context} tokens)"
        report.adjusted[reason] = report.adjusted.get(reason, 0) + len(over)
    elif over:
        report.skip(context_problem_reason(model) + " (request numbers in arrival order)", over)
        report.jobs -= len(over)
    return kept
