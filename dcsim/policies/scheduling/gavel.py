"""Gavel: heterogeneity-aware allocation solved as a linear program, realised in rounds (Narayanan et
al., "Heterogeneity-Aware Cluster Scheduling Policies for Deep Learning Workloads", OSDI'20).

Each pass solves for X[j, k], the share of time job j should spend on accelerator model k, given
each job's speed on each model (the calibrated relative speed, reference-seconds of work per second):
    sum_k X[j, k] <= 1,   sum_j demand_j X[j, k] <= capacity_k,   X >= 0 (0 where j may not use k)
with scipy's HiGHS (linprog). Objectives (`objective`):
- max_min_fairness: maximise the smallest normalised rate sum_k speed[j, k] X[j, k] / max_k speed[j, k]
  (Gavel's heterogeneity-aware LAS with equal weights);
- finish_time_fairness: maximise the smallest ratio of a job's rate to the rate it needs to end by its
  finish time on an equal share (Themis' rho = 1); a linear stand-in for Gavel's minimise-max-rho, which
  is convex but not linear (see docs/scheduling.md);
- max_sum_throughput: maximise the sum of normalised rates.
Realising X in rounds of `round` seconds: pairs (job, model) go by priority X[j, k] / (1 + rounds of
service the job has had), highest first; each job takes one model while the model has room (pairs with
X = 0 fill what is left, so no accelerator idles while a job could use it); running jobs not kept on
their model are preempted and resume where they were placed, a migration when the model changes.
Gavel counts rounds per job and model; the view keeps service per job only, so rounds are per job here.
As in Gavel, allocations change at round boundaries only: a pass between them (an arrival or a
completion) starts queued jobs on free accelerators, best priority first, and preempts nothing. The
program is solved once per round (max_min_fairness and max_sum_throughput reuse the last solution
while the set of jobs is unchanged: it depends on nothing else).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dcsim.policies.base import Decision, JobView, NextPass, PolicyBase, PreemptiveView, PreemptJob, StartJob
from dcsim.policies.registry import register
from dcsim.policies.scheduling.preemptive import all_jobs, budget, round_boundary

OBJECTIVES = ("max_min_fairness", "finish_time_fairness", "max_sum_throughput")


@register("scheduler", "gavel")
class Gavel(PolicyBase):
    """Heterogeneity-aware time shares per accelerator model from a linear program, in rounds (OSDI'20)."""

    preemptive = True

    def __init__(self, *, objective: str = "max_min_fairness", round: float = 360.0) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        if not 0 < round < float("inf"):
            raise ValueError(f"round must be a finite number of seconds > 0 (Gavel decides in rounds), got {round}")
        self.objective = objective
        self.round = round

    def schedule(self, view: PreemptiveView) -> Sequence[Decision]:
        jobs = sorted(all_jobs(view), key=lambda job: job.id)  # one order: the same program, the same solution
        if not jobs:
            return []
        capacity = budget(view)
        models = sorted(m for m in capacity if capacity[m] > 0)
        speed = np.array([[view.relative_speed(job, m) if m in view.candidate_accelerators(job)
                           and job.demand <= capacity[m] else 0.0 for m in models] for job in jobs])
        boundary = view.now / self.round
        if abs(boundary - np.round(boundary)) < 1e-9:  # a round starts: re-solve, and re-place everything
            key = (tuple(job.id for job in jobs), tuple(capacity[m] for m in models))
            memo = getattr(self, "_memo", None)
            if memo is not None and memo[0] == key and self.objective != "finish_time_fairness":
                shares = memo[1]
            else:
                shares = self.allocation(view, jobs, models, speed, capacity)
                self._memo = (key, shares)
            decisions = self._realise(view, jobs, models, speed, shares, capacity)
        else:
            decisions = self._fill(view, jobs, models, speed)
        if any(True for _ in view.queued()) or any(view.free[m] > 0 for m in models):
            decisions.append(NextPass(round_boundary(view.now, self.round)))
        return decisions

    def _fill(self, view: PreemptiveView, jobs: list[JobView], models: list[str],
              speed: np.ndarray) -> list[Decision]:
        """Between rounds: queued jobs onto free accelerators (fastest first), by their last solved share."""
        memo = getattr(self, "_memo", None)
        last = dict(zip(memo[0][0], memo[1].max(axis=1), strict=True)) if memo is not None else {}
        free = dict(view.free)
        running = {job.id for job in view.running()}
        decisions: list[Decision] = []
        waiting = sorted((j for j, job in enumerate(jobs) if job.id not in running),
                         key=lambda j: (-last.get(jobs[j].id, 0.0), jobs[j].submit, jobs[j].id))
        for j in waiting:
            job = jobs[j]
            for m in np.argsort(-speed[j], kind="stable"):
                model = models[m]
                if speed[j, m] > 0 and free[model] >= job.demand:
                    free[model] -= job.demand
                    decisions.append(StartJob(job.id, model))
                    break
        return decisions

    def allocation(self, view: PreemptiveView, jobs: list[JobView], models: list[str], speed: np.ndarray,
                   capacity: dict[str, int]) -> np.ndarray:
        """X[j, k] from the linear program of the objective."""
        from scipy.optimize import linprog
        from scipy.sparse import csr_matrix

        n, k = speed.shape
        best = speed.max(axis=1)
        usable = np.flatnonzero(best > 0)
        demand = np.array([job.demand for job in jobs], dtype=float)
        cols = np.arange(n * k)
        # Rows: n of sum_k X[j, k] <= 1, k of sum_j d_j X[j, k] <= C_k, then (max-min) one per usable job.
        rows = [np.repeat(np.arange(n), k), n + np.tile(np.arange(k), n)]
        values = [np.ones(n * k), np.repeat(demand, k)]
        columns = [cols, cols]
        upper = np.concatenate([np.ones(n), [capacity[m] for m in models]])
        bounds = np.column_stack([np.zeros(n * k), (speed.ravel() > 0).astype(float)])
        if self.objective == "max_sum_throughput":
            cost = -np.where(best[:, None] > 0, speed / np.where(best > 0, best, 1.0)[:, None], 0.0).ravel()
            a_ub = csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
                              shape=(n + k, n * k))
            result = linprog(cost, A_ub=a_ub, b_ub=upper, bounds=bounds, method="highs")
            return result.x.reshape(n, k) if result.status == 0 else np.zeros((n, k))
        # Max-min: maximise t subject to t * need_j - sum_k speed[j, k] X[j, k] <= 0 for usable jobs.
        need = best if self.objective == "max_min_fairness" else self._needed_rates(view, jobs, best)
        m = len(usable)
        rate_rows = n + k + np.repeat(np.arange(m), k)
        rate_cols = (usable[:, None] * k + np.arange(k)).ravel()
        rows += [rate_rows, n + k + np.arange(m)]
        values += [-speed[usable].ravel(), need[usable]]
        columns += [rate_cols, np.full(m, n * k)]
        a_ub = csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
                          shape=(n + k + m, n * k + 1))
        cost = np.zeros(n * k + 1)
        cost[-1] = -1.0
        result = linprog(cost, A_ub=a_ub, b_ub=np.concatenate([upper, np.zeros(m)]),
                         bounds=np.vstack([bounds, [0.0, np.inf]]), method="highs")
        return result.x[:-1].reshape(n, k) if result.status == 0 else np.zeros((n, k))

    def _needed_rates(self, view: PreemptiveView, jobs: list[JobView], best: np.ndarray) -> np.ndarray:
        """Rate (reference work per second) each job needs to end by its finish time on an equal share."""
        total = sum(view.capacity.values())
        n = len(jobs)
        need = np.ones(n)
        for i, job in enumerate(jobs):
            if best[i] <= 0:
                continue
            left = view.remaining_estimate(job)
            alone = job.estimate / best[i]
            deadline = job.submit + alone * max(1.0, n * job.demand / total)
            need[i] = left / max(deadline - view.now, self.round)
        return np.maximum(need, 1e-12)

    def _realise(self, view: PreemptiveView, jobs: list[JobView], models: list[str], speed: np.ndarray,
                 shares: np.ndarray, capacity: dict[str, int]) -> list[Decision]:
        served = np.array([view.attained_service(job) / job.demand / self.round for job in jobs])
        priority = shares / (1.0 + served)[:, None]
        order = sorted((-priority[j, m], -speed[j, m], jobs[j].submit, jobs[j].id, j, m)
                        for j in range(len(jobs)) for m in range(len(models)) if speed[j, m] > 0)
        left = dict(capacity)
        place: dict[int, str] = {}
        for *_, j, m in order:
            job, model = jobs[j], models[m]
            if job.id not in place and left[model] >= job.demand:
                place[job.id] = model
                left[model] -= job.demand
        decisions: list[Decision] = []
        running = set()
        for job in view.running():
            running.add(job.id)
            if place.get(job.id) != job.accelerator:
                decisions.append(PreemptJob(job.id))
        free = dict(view.free)
        for job in jobs:
            target = place.get(job.id)
            if target is not None and job.id not in running and free[target] >= job.demand:
                free[target] -= job.demand
                decisions.append(StartJob(job.id, target))
        return decisions
