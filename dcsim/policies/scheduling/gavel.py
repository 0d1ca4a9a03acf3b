"""Gavel: heterogeneity-aware allocation solved as a linear program, realised in rounds (Narayanan et
al., "Heterogeneity-Aware Cluster Scheduling Policies for Deep Learning Workloads", OSDI'20).

Each pass solves for X[j, k], the share of time job j should spend on accelerator model k, given
each job's speed on each model (the calibrated relative speed, reference-seconds of work per second):
    sum_k X[j, k] <= 1,   sum_j demand_j X[j, k] <= capacity_k,   X >= 0 (0 where j may not use k)
with scipy's HiGHS (linprog). Objectives (`objective`):
- max_min_fairness: maximise the smallest normalised rate sum_k speed[j, k] X[j, k] / max_k speed[j, k]
  (Gavel's heterogeneity-aware LAS with equal weights);
- finish_time_fairness: minimise the largest rho_j = (t_j + left_j / rate_j(X)) / alone_j, a job's
  expected completion time over its time alone on an equal share (Themis, Gavel). rho_j <= r is linear
  in X for a fixed r (rate_j(X) >= left_j / (r alone_j - t_j)), so the smallest feasible r is found by
  bisection over feasibility programs; at that r, the program maximises the sum of normalised rates so
  capacity the bound does not need still serves jobs;
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
from typing import Any

import numpy as np

from dcsim.policies.base import Decision, JobView, NextPass, PolicyBase, PreemptiveView, PreemptJob, StartJob
from dcsim.policies.registry import register
from dcsim.policies.scheduling.preemptive import all_jobs, budget, round_boundary

OBJECTIVES = ("max_min_fairness", "finish_time_fairness", "max_sum_throughput")
RHO_TOLERANCE = 1e-3  # relative: finish_time_fairness's bisection stops within this of the optimum


class SharePrograms:
    """Gavel's linear programs over X[j, k] (row-major: job j's k models side by side), with HiGHS.

    Shared rows: sum_k X[j, k] <= 1 per job, sum_j demand_j X[j, k] <= capacity_k per model, and
    0 <= X[j, k] <= 1 where job j may use model k (speed > 0), else X[j, k] = 0.
    """

    def __init__(self, speed: np.ndarray, demand: np.ndarray, capacity: np.ndarray) -> None:
        n, k = speed.shape
        self.speed, self.n, self.k = speed, n, k
        self.best = speed.max(axis=1)
        self.usable = np.flatnonzero(self.best > 0)
        scale = np.where(self.best > 0, self.best, 1.0)[:, None]
        self.normalised = np.where(self.best[:, None] > 0, speed / scale, 0.0)
        cols = np.arange(n * k)
        self.rows = [np.repeat(np.arange(n), k), n + np.tile(np.arange(k), n)]
        self.values = [np.ones(n * k), np.repeat(demand, k)]
        self.columns = [cols, cols]
        self.upper = np.concatenate([np.ones(n), capacity])
        self.bounds = np.column_stack([np.zeros(n * k), (speed.ravel() > 0).astype(float)])
        self._matrices: dict[bool, Any] = {}

    def _rate_rows(self, first_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-rate_j(X) = -sum_k speed[j, k] X[j, k], one row per usable job from `first_row`."""
        usable, k = self.usable, self.k
        rows = first_row + np.repeat(np.arange(len(usable)), k)
        cols = (usable[:, None] * k + np.arange(k)).ravel()
        return rows, cols, -self.speed[usable].ravel()

    def solve(self, floors: np.ndarray | None = None, feasibility: bool = False) -> np.ndarray | None:
        """Largest sum of normalised rates (or any X, `feasibility`) with rate_j(X) >= floors[j]."""
        from scipy.optimize import linprog

        if floors is None:
            a_ub, upper = self._matrix(False), self.upper
        else:
            a_ub, upper = self._matrix(True), np.concatenate([self.upper, -floors[self.usable]])
        cost = np.zeros(self.n * self.k) if feasibility else -self.normalised.ravel()
        result = linprog(cost, A_ub=a_ub, b_ub=upper, bounds=self.bounds, method="highs")
        return result.x.reshape(self.n, self.k) if result.status == 0 else None

    def _matrix(self, with_floors: bool) -> Any:
        """The constraint matrix, built once per program (only the right-hand side changes with floors)."""
        from scipy.sparse import csr_matrix

        if with_floors not in self._matrices:
            rows, values, columns = list(self.rows), list(self.values), list(self.columns)
            height = self.n + self.k
            if with_floors:
                extra_rows, extra_cols, extra_values = self._rate_rows(height)
                rows.append(extra_rows)
                columns.append(extra_cols)
                values.append(extra_values)
                height += len(self.usable)
            self._matrices[with_floors] = csr_matrix(
                (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
                shape=(height, self.n * self.k))
        return self._matrices[with_floors]

    def max_min(self, need: np.ndarray) -> np.ndarray | None:
        """Maximise t with rate_j(X) >= t need_j for every usable job (one extra column for t)."""
        from scipy.optimize import linprog
        from scipy.sparse import csr_matrix

        n, k, m = self.n, self.k, len(self.usable)
        rate_rows, rate_cols, rate_values = self._rate_rows(n + k)
        rows = [*self.rows, rate_rows, n + k + np.arange(m)]
        values = [*self.values, rate_values, need[self.usable]]
        columns = [*self.columns, rate_cols, np.full(m, n * k)]
        a_ub = csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
                          shape=(n + k + m, n * k + 1))
        cost = np.zeros(n * k + 1)
        cost[-1] = -1.0
        result = linprog(cost, A_ub=a_ub, b_ub=np.concatenate([self.upper, np.zeros(m)]),
                         bounds=np.vstack([self.bounds, [0.0, np.inf]]), method="highs")
        return result.x[:-1].reshape(n, k) if result.status == 0 else None


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
        last = (dict(zip(memo[0][0], memo[1].max(axis=1), strict=True))
                if memo is not None and memo[1].size else {})
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
        """X[j, k] from the program of the objective (all zeros if HiGHS finds none, or no job can run on
        any model left: every node of a model off, failed or too small for the jobs)."""
        if not (speed > 0).any():
            return np.zeros(speed.shape)
        program = SharePrograms(speed, np.array([job.demand for job in jobs], dtype=float),
                                np.array([capacity[m] for m in models], dtype=float))
        if self.objective == "max_sum_throughput":
            x = program.solve()
        elif self.objective == "max_min_fairness":
            x = program.max_min(program.best)
        else:
            x = self._finish_time_fair(view, jobs, program)
        return x if x is not None else np.zeros(speed.shape)

    def _finish_time_fair(self, view: PreemptiveView, jobs: list[JobView], program: SharePrograms) -> np.ndarray | None:
        """The allocation with the largest sum of normalised rates among those whose worst rho is within
        RHO_TOLERANCE of the smallest possible (bisection on r over programs with rho_j <= r)."""
        usable = program.usable
        total = sum(view.capacity.values())
        n = len(jobs)
        left = np.array([view.remaining_estimate(job) for job in jobs], dtype=float)
        waited = np.array([view.now - job.submit for job in jobs], dtype=float)
        alone = np.ones(n)
        for i in usable:
            alone[i] = max(jobs[i].estimate / program.best[i] * max(1.0, n * jobs[i].demand / total), 1e-9)

        def floors(r: float) -> np.ndarray:
            slack = np.maximum(r * alone - waited, 1e-12)
            return np.where(program.best > 0, left / slack, 0.0)

        def worst_rho(x: np.ndarray) -> float:
            rates = (x[usable] * program.speed[usable]).sum(axis=1)
            return float(np.max((waited[usable] + left[usable] / np.maximum(rates, 1e-300)) / alone[usable]))

        # No allocation beats a job's best rate: rho_j >= (t_j + left_j / best_j) / alone_j.
        low = max(((waited[i] + left[i] / program.best[i]) / alone[i] for i in usable), default=1.0)
        low = max(low, 1e-9)
        best: np.ndarray | None = None
        # The optimum moves little from round to round: try just above the last one before doubling.
        high = max(low, getattr(self, "_last_rho", low) * 1.01)

        def probe(r: float) -> bool:
            """Solve at bound r; a feasible X also bounds the optimum by its own worst rho (<= r)."""
            nonlocal best, high
            x = program.solve(floors(r))
            if x is None:
                return False
            best, high = x, min(r, worst_rho(x))
            return True

        for _ in range(80):
            if probe(high):
                break
            low, high = high, high * 2.0
        else:
            return None
        if high > low * 1.02 and not probe(high / 1.02):  # most rounds: brackets the optimum within 2%
            low = high / 1.02
        while high - low > RHO_TOLERANCE * high:
            middle = (low + high) / 2
            if not probe(middle):
                low = middle
        self._last_rho = high
        return best

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
