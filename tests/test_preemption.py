"""Preemption by hand: two-job timelines per policy, suspension costs, decision validation, conservation.

The timelines are computed by hand from the policies' rules (comments give the arithmetic) and read
back from the job_segments frame (the phases each job held accelerators in) and the jobs frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dcsim
from dcsim.engine.lifecycle import Lifecycle, SuspensionCosts
from dcsim.errors import PolicyError
from dcsim.model import Job, JobState
from dcsim.policies import register
from dcsim.policies.base import Decision, NextPass, PolicyBase, PreemptiveView, PreemptJob, StartJob
from dcsim.scenario import scenario_from_dict
from tests.helpers import SCENARIOS, speed_ratio

COSTS = {"checkpoint_size": "10GB", "write_bandwidth": "1GB/s", "read_bandwidth": "2GB/s", "restart_delay": "3s"}


def trace_run(tmp_path: Path, rows: Sequence[tuple[float, float, int]], scheduler: str,
              params: dict[str, Any] | None = None, *, pools: list[dict[str, Any]] | None = None,
              suspension: dict[str, Any] | None = None, startup: float = 0.0, **top: Any) -> dcsim.RunResult:
    """Jobs (submit s, work s on V100, accelerators) from a CSV trace on one V100 unless `pools` says otherwise."""
    path = tmp_path / "jobs.csv"
    path.write_text("submit,duration,accelerators\n" + "".join(f"{s},{d},{a}\n" for s, d, a in rows))
    training: dict[str, Any] = {"source": "trace", "path": str(path), "startup": startup}
    if suspension is not None:
        training["suspension"] = suspension
    data = {"name": "pre", "cluster": {"node_pools": pools or [
                {"name": "v", "count": 1, "accelerator": "V100", "accelerators_per_node": 1}]},
            "workload": {"training": training},
            "policies": {"scheduler": {"name": scheduler, "params": params or {}}, "placement": "pack"}, **top}
    return dcsim.run(scenario_from_dict(data))


def timeline(result: dcsim.RunResult) -> list[tuple[int, str, float, float]]:
    segments = result.job_segments
    assert segments is not None
    return [(int(r.job_id), str(r.phase), float(r.start_s), float(r.end_s)) for r in segments.itertuples()]


# --- two-job timelines ------------------------------------------------------------------------------
def test_srtf_two_jobs_by_hand(tmp_path: Path) -> None:
    # A (100 s) runs from 0; B (20 s) arrives at 10 when A has 90 s left: B preempts A, runs 10-30,
    # A resumes at 30 with 90 s left and ends at 120. Free preemption: no suspending or restoring.
    result = trace_run(tmp_path, [(0, 100, 1), (10, 20, 1)], "srtf")
    assert timeline(result) == [(0, "computing", 0, 10), (1, "computing", 10, 30), (0, "computing", 30, 120)]
    jobs = result.jobs
    assert jobs["preemptions"].tolist() == [1, 0]
    assert jobs["queue_s"].tolist() == [20.0, 0.0]
    assert jobs["attained_service_s"].tolist() == [100.0, 20.0]
    assert jobs["end_s"].tolist() == [120.0, 30.0]


def test_srtf_with_checkpoint_costs_by_hand(tmp_path: Path) -> None:
    # At 10 A saves 10 GB at 1 GB/s: it holds the accelerator until 20, so B starts at 20 and ends at 40.
    # A restores for 3 s + 10 GB / 2 GB/s = 8 s (40-48), then computes its 90 s left: 48-138.
    result = trace_run(tmp_path, [(0, 100, 1), (10, 20, 1)], "srtf", suspension=COSTS)
    assert timeline(result) == [(0, "computing", 0, 10), (0, "suspending", 10, 20), (1, "computing", 20, 40),
                                (0, "restoring", 40, 48), (0, "computing", 48, 138)]
    jobs = result.jobs
    assert jobs["suspend_s"].tolist() == [10.0, 0.0]
    assert jobs["restore_s"].tolist() == [8.0, 0.0]
    assert jobs["queue_s"].tolist() == [20.0, 10.0]  # A waits 20-40, B 10-20
    assert jobs["wait_s"].tolist() == [0.0, 10.0]  # the first wait only
    assert jobs["attained_service_s"].tolist() == [100.0, 20.0]
    assert jobs["lost_work_ref_s"].tolist() == [0.0, 0.0]


def test_las_in_rounds_two_jobs_by_hand(tmp_path: Path) -> None:
    # Round 5 s. A alone 0-10 (10 s attained). B arrives at 10 with 0: B runs; at the boundary 15 B has 5 < 10,
    # it goes on; at 20 both have 10: the tie goes to the earlier arrival, A (20-25); at 25 B (10) < A (15):
    # B 25-30; at 30 both 15: A 30-35; B 35-40 completes its 20 s; A runs alone 40-120.
    result = trace_run(tmp_path, [(0, 100, 1), (10, 20, 1)], "las", {"round": 5.0})
    assert timeline(result) == [(0, "computing", 0, 10), (1, "computing", 10, 20), (0, "computing", 20, 25),
                                (1, "computing", 25, 30), (0, "computing", 30, 35), (1, "computing", 35, 40),
                                (0, "computing", 40, 120)]
    assert result.jobs["preemptions"].tolist() == [3, 2]


def test_las_without_rounds_decides_on_arrivals_and_completions(tmp_path: Path) -> None:
    # Round 0: B preempts A at its arrival (0 < 10 attained) and then runs to completion (30); A resumes.
    result = trace_run(tmp_path, [(0, 100, 1), (10, 20, 1)], "las")
    assert timeline(result) == [(0, "computing", 0, 10), (1, "computing", 10, 30), (0, "computing", 30, 120)]


def test_tiresias_two_jobs_by_hand(tmp_path: Path) -> None:
    # One threshold at 30 accelerator-seconds. B arrives at 10 in queue 0 like A: FIFO keeps A running.
    # At 30 A crosses the threshold (queue 1): B preempts it and runs 30-50; A resumes 50-120.
    result = trace_run(tmp_path, [(0, 100, 1), (10, 20, 1)], "tiresias", {"queues": 2, "thresholds": [30.0]})
    assert timeline(result) == [(0, "computing", 0, 30), (1, "computing", 30, 50), (0, "computing", 50, 120)]


def test_tiresias_counts_accelerator_seconds(tmp_path: Path) -> None:
    # Two accelerators. A needs 2 and crosses 30 accelerator-seconds after 15 s, not 30 s: B (1 accelerator,
    # queued since 10 because A holds both) preempts it at 15 and runs 15-35; A resumes 35-120.
    pools = [{"name": "v", "count": 1, "accelerator": "V100", "accelerators_per_node": 2}]
    result = trace_run(tmp_path, [(0, 100, 2), (10, 20, 1)], "tiresias", {"thresholds": [30.0]}, pools=pools)
    assert timeline(result) == [(0, "computing", 0, 15), (1, "computing", 15, 35), (0, "computing", 35, 120)]
    assert result.jobs["attained_service_s"].tolist() == [200.0, 20.0]


def test_tiresias_promotes_a_starved_job(tmp_path: Path) -> None:
    # Threshold 10, promote_knob 1: a queued job that has waited as long as it has executed goes to queue 0.
    # A (100 s) runs 0-10 and is demoted; B (100 s, arrived at 5, queue 0) preempts it: B 10-20, then B is in
    # queue 1 too. At 20 A has waited 10 = its 10 s executed: promoted, it preempts B: A 20-30. B (10 s
    # executed, queued at 20) is promoted at 30: B 30-50. A (20 s executed, queued at 30) at 50: A 50-80.
    # B (30 s, queued at 50) at 80: B 80-130. A (50 s, queued at 80) at 130: it computes its last 50 s,
    # 130-180, before B (80 s executed, queued at 130) would be promoted at 210. B finishes 180-200.
    result = trace_run(tmp_path, [(0, 100, 1), (5, 100, 1)], "tiresias",
                       {"thresholds": [10.0], "promote_knob": 1.0})
    assert timeline(result) == [(0, "computing", 0, 10), (1, "computing", 10, 20), (0, "computing", 20, 30),
                                (1, "computing", 30, 50), (0, "computing", 50, 80), (1, "computing", 80, 130),
                                (0, "computing", 130, 180), (1, "computing", 180, 200)]


# --- the engine validates decisions --------------------------------------------------------------------
class _Scripted(PolicyBase):
    preemptive = True

    def __init__(self) -> None:
        pass

    def script(self, view: PreemptiveView) -> list[Decision]:
        raise NotImplementedError

    def schedule(self, view: PreemptiveView) -> list[Decision]:
        return self.script(view)


@register("scheduler", "test_preempt_queued")
class _PreemptQueued(_Scripted):
    def script(self, view: PreemptiveView) -> list[Decision]:
        waiting = [job.id for job in view.queued()]
        return [PreemptJob(waiting[-1])] if len(waiting) > 1 else [StartJob(waiting[0], "V100")]


@register("scheduler", "test_start_twice")
class _StartTwice(_Scripted):
    def script(self, view: PreemptiveView) -> list[Decision]:
        job = next(iter(view.queued()))
        return [StartJob(job.id, "V100"), StartJob(job.id, "V100")]


@register("scheduler", "test_bad_round")
class _BadRound(_Scripted):
    def script(self, view: PreemptiveView) -> list[Decision]:
        return [NextPass(0.0)]


@register("scheduler", "test_migrate")
class _Migrate(_Scripted):
    """Start job 0 on V100, preempt it at 10 s, resume it on H100."""

    def script(self, view: PreemptiveView) -> list[Decision]:
        for job in view.running():
            if job.accelerator == "V100" and view.now >= 10:
                return [PreemptJob(job.id)]
        for job in view.queued():
            other = next(m for m in view.candidate_accelerators(job) if m != "V100")
            return [StartJob(job.id, other if job.accelerator else "V100"), NextPass(10.0)]
        return []


@pytest.mark.parametrize(("policy", "message"), [
    ("test_preempt_queued", r"scheduler 'test_preempt_queued' returned PreemptJob\(job_id=1\): job 1 is not running "
                            r"\(waiting in the queue\)"),
    ("test_start_twice", r"scheduler 'test_start_twice' returned StartJob\(job_id=0, accelerator='V100'\): "
                         "job is not waiting in the queue"),
    ("test_bad_round", r"scheduler 'test_bad_round' returned NextPass\(after=0.0\): `after` must be a finite"),
])
def test_bad_decisions_name_policy_and_decision(tmp_path: Path, policy: str, message: str) -> None:
    pools = [{"name": "v", "count": 1, "accelerator": "V100", "accelerators_per_node": 2}]
    with pytest.raises(PolicyError, match=message):
        trace_run(tmp_path, [(0, 100, 1), (0, 20, 1)], policy, pools=pools)


def test_resume_on_another_model_is_a_migration(tmp_path: Path) -> None:
    pools = [{"name": "v", "count": 1, "accelerator": "V100", "accelerators_per_node": 1},
             {"name": "h", "count": 1, "accelerator": "H100", "accelerators_per_node": 1}]
    result = trace_run(tmp_path, [(0, 100, 1)], "test_migrate", pools=pools, suspension=COSTS)
    jobs = result.jobs
    assert (jobs["preemptions"].iloc[0], jobs["migrations"].iloc[0]) == (1, 1)
    speed = speed_ratio("generic", "H100", "V100")
    # 10 s on V100, save 10 s, restore 8 s on H100, then the 90 s of reference work left at H100 speed.
    assert jobs["end_s"].iloc[0] == pytest.approx(10 + 10 + 8 + 90 / speed, rel=1e-12)
    assert jobs["accelerator_model"].iloc[0].startswith("H100")


def test_plain_lists_of_start_job_still_work_and_account_waits() -> None:
    from tests.helpers import tiny_scenario

    result = dcsim.run(scenario_from_dict(tiny_scenario()))
    jobs = result.jobs
    assert (jobs["preemptions"] == 0).all() and (jobs["suspend_s"] == 0).all()
    done = jobs[jobs["state"] == "completed"]
    assert np.allclose(done["queue_s"], done["wait_s"], rtol=0, atol=1e-9)
    assert "preemption" not in result.summary["training"]


# --- lifecycle unit: a failure keeps progress up to the last checkpoint ---------------------------------
def test_suspend_keeps_progress_up_to_a_time_and_counts_lost_work() -> None:
    life = Lifecycle(startup=0.0, costs=SuspensionCosts(write_bps=1e9, read_bps=1e9, restart_delay=5.0))
    job = Job(id=0, name="j", submit=0.0, demand=2, model="generic", work=100.0, estimate=100.0,
              checkpoint_bytes=4e9)
    life.enqueue(job, 0.0)
    assert life.start(job, 0.0, "V100", ((0, 2),)) == 0.0
    job.remaining = 100.0
    life.compute(job, 0.0)
    job.remaining = 70.0  # the engine brought progress up to t = 30
    assert life.suspend(job, 30.0, preempted=True) == 4.0  # 4 GB at 1 GB/s
    life.suspended(job, 34.0)
    assert life.start(job, 40.0, "V100", ((1, 2),)) == 5.0 + 4.0  # restart delay + read
    assert job.migrations == 1  # other nodes
    life.compute(job, 49.0)
    job.remaining = 50.0  # 20 s of work later (t = 69): a failure keeps what was saved at t = 30
    life.interrupt(job, 69.0)
    assert job.remaining == 70.0 and job.lost_work == 20.0
    assert job.attained == 2 * (30.0 + 20.0) and job.lost_service == 2 * 20.0
    assert (job.preemptions, job.interruptions, job.queue_time, job.suspend_time, job.restore_time) == \
        (1, 1, 6.0, 4.0, 9.0)
    assert job.state is JobState.SUSPENDING


# --- conservation ----------------------------------------------------------------------------------------
def busy_workload(tmp_path: Path, n: int = 60, seed: int = 0) -> list[tuple[float, float, int]]:
    rng = np.random.default_rng(seed)
    submits = np.cumsum(rng.exponential(40.0, n))
    works = rng.lognormal(np.log(200.0), 1.2, n)
    demands = rng.choice([1, 2, 4, 8], size=n, p=[0.4, 0.3, 0.2, 0.1])
    return [(float(s), float(w), int(d)) for s, w, d in zip(submits, works, demands, strict=True)]


CONSERVATION = [("srtf", {}), ("las", {}), ("las", {"round": 60.0}), ("tiresias", {"thresholds": [500.0]}),
                ("tiresias", {"queues": 3, "thresholds": [100.0, 1000.0], "promote_knob": 2.0})]


@pytest.mark.parametrize(("scheduler", "params"), CONSERVATION)
@pytest.mark.parametrize("costs", [None, COSTS], ids=["free", "costly"])
def test_conservation(tmp_path: Path, scheduler: str, params: dict[str, Any], costs: dict[str, Any] | None) -> None:
    pools = [{"name": "v", "count": 2, "accelerator": "V100", "accelerators_per_node": 8}]
    result = trace_run(tmp_path, busy_workload(tmp_path), scheduler, params, pools=pools, suspension=costs,
                       startup=2.0)
    jobs, segments = result.jobs.set_index("job_id"), result.job_segments
    assert segments is not None
    assert jobs["preemptions"].sum() > 5  # the workload does exercise preemption
    # Every job ends in exactly one final state (no horizon: all complete).
    assert (jobs["state"] == "completed").all()
    # No accelerator over-allocated at any time, suspending and restoring included (ends before starts).
    events = sorted([(r.start_s, 1, r.accelerators) for r in segments.itertuples()]
                    + [(r.end_s, 0, -r.accelerators) for r in segments.itertuples()])
    assert max(np.cumsum([held for _, _, held in events])) <= 16
    # A job's phases do not overlap, and it holds accelerators exactly from start-up to its end.
    for job_id, own in segments.groupby("job_id"):
        own = own.sort_values("start_s")
        assert (own["start_s"].to_numpy()[1:] >= own["end_s"].to_numpy()[:-1] - 1e-9).all()
        assert own["end_s"].max() == pytest.approx(jobs.loc[job_id, "end_s"])
    by_phase = segments.assign(held=segments["end_s"] - segments["start_s"]).pivot_table(
        index="job_id", columns="phase", values="held", aggfunc="sum").reindex(jobs.index).fillna(0.0)
    computing = by_phase["computing"]
    # Attained service is the sum of computing intervals; on V100 (speed 1) that is exactly the work:
    # no work lost, none done twice.
    assert np.allclose(jobs["attained_service_s"], computing * jobs["accelerators"], rtol=1e-9)
    assert np.allclose(computing, jobs["work_ref_s"], rtol=1e-9)
    assert (jobs["lost_work_ref_s"] == 0).all()
    for phase, column in (("suspending", "suspend_s"), ("restoring", "restore_s")):
        held = by_phase[phase] if phase in by_phase else pd.Series(0.0, index=jobs.index)
        assert np.allclose(jobs[column], held, atol=1e-9)
    if costs is None:
        assert (jobs["suspend_s"] == 0).all() and (jobs["restore_s"] <= 2.0 * jobs["preemptions"] + 1e-9).all()
    # JCT = summed waits + every phase holding accelerators (start-up, computing, suspending, restoring).
    assert np.allclose(jobs["jct_s"], jobs["queue_s"] + by_phase.sum(axis=1), rtol=1e-9)
    assert (by_phase["starting"] <= 2.0 + 1e-9).all()


# --- summary: preemption, overhead, fairness ------------------------------------------------------------
def test_summary_fairness_and_overheads_by_hand(tmp_path: Path) -> None:
    # The srtf timeline above: A (100 s alone) ends at 120, B (20 s alone) arrived at 10 and ends at 30.
    training = trace_run(tmp_path, [(0, 100, 1), (10, 20, 1)], "srtf").summary["training"]
    assert training["preemption"]["preemptions"] == 1 and training["preemption"]["migrations"] == 0
    assert training["bounded_slowdown"]["max"] == pytest.approx(1.2) and training["bounded_slowdown"]["p50"] == 1.1
    # Jain of slowdowns 1.2 and 1.0: 2.2^2 / (2 x 2.44).
    assert training["fairness"]["jain_slowdown"] == pytest.approx(2.2**2 / (2 * 2.44))
    # One accelerator. A sees 1 job on [0, 10), 2 on [10, 30), 1 on [30, 120]: N = 140 / 120; its equal-share
    # JCT is 100 x 140/120, rho = 120 / (100 x 7/6) = 1.0286. B sees 2 throughout: rho = 20 / (20 x 2) = 0.5.
    ftf = training["fairness"]["finish_time_fairness"]
    assert ftf["max"] == pytest.approx(120 / (100 * 140 / 120))
    assert ftf["mean"] == pytest.approx((120 / (100 * 140 / 120) + 0.5) / 2)
    assert ftf["share_above_1"] == 0.5
    costly = trace_run(tmp_path, [(0, 100, 1), (10, 20, 1)], "srtf", suspension=COSTS).summary["training"]
    assert costly["preemption"]["overhead_accelerator_hours"] == pytest.approx((10 + 8) / 3600)
    # Bounded slowdown floors the alone time at 10 s: a 2 s job that waited 8 s has 10 / 10 = 1, not 5.
    short = trace_run(tmp_path, [(0, 8, 1), (0, 2, 1)], "las").summary["training"]
    assert short["bounded_slowdown"]["max"] == pytest.approx(1.0)


def test_compare_tabulates_preemption_for_preemptive_variants_only() -> None:
    import dcsim
    from dcsim.scenario import scenario_from_dict
    from tests.helpers import tiny_scenario

    comparison = dcsim.compare(scenario_from_dict(tiny_scenario()), ["scheduler=fifo", "scheduler=srtf"], seeds=2)
    table = comparison.table.set_index("variant")
    assert table.loc["scheduler=fifo", "job_preemptions"].isna().all()
    assert (table.loc["scheduler=srtf", "job_preemptions"] >= 0).all()
    assert table.loc["scheduler=srtf", "jain_slowdown"].between(0, 1).all()


def test_gantt_draws_each_phase_of_a_preempted_job(tmp_path: Path) -> None:
    """The Gantt chart of a preemptive run draws computing, restoring and suspending segments (the srtf
    timeline above: A computes 0-10, suspends 10-20, restores 40-48, computes 48-138)."""
    from matplotlib.collections import PolyCollection

    from dcsim.reporting import charts, write_report

    result = trace_run(tmp_path, [(0, 100, 1), (10, 20, 1)], "srtf", suspension=COSTS)
    drawn: list[Any] = []
    original = charts.save

    def keep(fig: Any, path: Path) -> Path:
        drawn.append(fig)
        return original(fig, path)

    charts.save = keep  # type: ignore[assignment]
    (tmp_path / "report").mkdir()
    try:
        files = write_report(result, tmp_path / "report")
    finally:
        charts.save = original  # type: ignore[assignment]
    assert files.failures == [] and (tmp_path / "report" / "gantt.png").is_file()
    gantt = next(fig for fig in drawn if fig.axes and "job (by start time" in fig.axes[0].get_ylabel())
    bars = [c for c in gantt.axes[0].collections if isinstance(c, PolyCollection)]
    # bars[0]: the thin waiting bars; then computing, starting/restoring, suspending (axis in minutes)
    spans = [sorted((round(60 * float(p.vertices[:, 0].min()), 6), round(60 * float(p.vertices[:, 0].max()), 6))
                    for p in c.get_paths()) for c in bars[1:]]
    assert spans == [[(0.0, 10.0), (20.0, 40.0), (48.0, 138.0)], [(40.0, 48.0)], [(10.0, 20.0)]]
    labels = [t.get_text() for t in gantt.axes[0].get_legend().get_texts()]
    assert "suspending (checkpoint)" in labels and "starting / restoring" in labels


# --- checkpoints of suspensions through the storage tier and the network ----------------------------------
def test_a_preempted_jobs_checkpoint_traffic_appears_on_the_storage_tier() -> None:
    """fat_tree_placement has a checkpoint tier; periodic checkpoints are pushed past the run, so every
    write on the tier is a suspension's, and every read beyond the dataset stream a restore's."""
    runs = {name: dcsim.run(SCENARIOS / "fat_tree_placement.yaml", overrides=[
        f"policies.scheduler={name}", "workload.training.checkpoint.interval=100d", "workload.training.jobs=60"])
        for name in ("srtf", "fifo")}
    preempted, plain = runs["srtf"], runs["fifo"]
    assert preempted.jobs["preemptions"].sum() > 0 and plain.jobs["preemptions"].sum() == 0
    assert preempted.storage_timeseries["write_Bps"].max() > 0
    assert plain.storage_timeseries["write_Bps"].max() == 0
    # no suspension bandwidth is set: the save and the read-back take time only through the tier
    assert preempted.jobs["suspend_s"].sum() > 0 and preempted.jobs["restore_s"].sum() > 0
    assert (preempted.jobs["state"] == "completed").all()
