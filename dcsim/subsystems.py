"""The subsystems of a run, listed once in SUBSYSTEMS: what each adds to a RunResult.

A subsystem (training, inference, network, storage, failures; power next) contributes frames
drawn from the recorder and sections of summary.json, each placed after a named key so the file
reads top-down. runner.py iterates this list and names none of them. Adding a subsystem adds its
modules and one entry here; its report section goes in reporting/sections.py, which stays apart
because reporting reads saved results only and never the live model.

The build part is not iterated: the subsystems call into each other at run time (freed capacity,
traffic sinks, weight loading), so build/model.py wires them explicitly, one module per subsystem.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dcsim.build.disaggregation import disaggregation_frames
from dcsim.build.hardware_summary import hardware_section
from dcsim.build.model import Model
from dcsim.metrics.disaggregation_summary import disaggregation_section
from dcsim.metrics.failure_summary import failure_summary, failures_frame
from dcsim.metrics.fairness import lifecycle_section
from dcsim.metrics.inference_summary import inference_summary
from dcsim.metrics.kv_cache_summary import kv_cache_results
from dcsim.metrics.network_frames import (
    link_timeseries_frame,
    links_frame,
    network_summary,
    storage_summary,
    storage_timeseries_frame,
)
from dcsim.metrics.power_summary import power_policy_frame, power_summary
from dcsim.metrics.serving_frames import ServiceInfo
from dcsim.metrics.summary import training_summary


@dataclass(frozen=True)
class RunFrames:
    """What every run has, handed to each subsystem: the model, the end time and the core frames."""

    model: Model
    end_time: float
    jobs: pd.DataFrame
    timeseries: pd.DataFrame
    produced: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # frames of the subsystems listed before


@dataclass(frozen=True)
class Contribution:
    frames: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    sections: Mapping[str, Any] = field(default_factory=dict)  # summary.json sections, in order


@dataclass(frozen=True)
class Subsystem:
    name: str
    after: tuple[str, ...]  # its sections follow the first of these summary keys present
    collect: Callable[[RunFrames], Contribution | None]  # None: not in this run
    headline: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # compare metric -> summary path
    present: Callable[[Any], bool] = lambda scenario: True  # whether a scenario has it (before running)


def _training(run: RunFrames) -> Contribution | None:
    workload = run.model.workload
    if workload is None:
        return None
    report: dict[str, Any] = dict(workload.as_dict())
    training = training_summary(run.jobs, int(report.get("jobs", len(run.jobs))))
    # Preemption, overhead and fairness keys only under a preemptive scheduler, so the summaries of
    # runs under fifo, sjf and easy_backfill stay as they were (their goldens unchanged).
    if getattr(run.model.simulation.training.scheduler, "preemptive", False):
        tenancy = getattr(run.model.scenario.workload.training, "tenancy", None)
        quotas = {name: tenant.quota for name, tenant in tenancy.tenants.items()} if tenancy is not None else {}
        training.update(lifecycle_section(run.jobs, sum(run.model.cluster.capacity.values()), run.end_time, quotas))
    return Contribution(frames={"job_segments": run.model.recorder.segments_frame()},
                        sections={"workload": report, "training": training})


def _inference(run: RunFrames) -> Contribution | None:
    model, inference = run.model, run.model.scenario.workload.inference
    if inference is None or model.serving is None:
        return None
    recorder = model.recorder
    infos = [ServiceInfo(s.name, s.slo.ttft, s.slo.tpot) for s in inference.services]
    replica_timeseries = recorder.replica_timeseries_frame()  # built once: the replicas frame reads it too
    frames = {"requests": recorder.requests_frame(infos),
              "replicas": recorder.replicas_frame(run.end_time, replica_timeseries),
              "replica_timeseries": replica_timeseries}
    services = {}
    runtimes = model.serving.engine.services[:len(inference.services)]  # decode pools follow (disaggregation)
    for service, runtime in zip(inference.services, runtimes, strict=True):
        services[service.name] = {"slo": service.slo.ttft is not None or service.slo.tpot is not None,
                                  "scale_up_blocked": runtime.scale_up_blocked,
                                  "workload": model.serving.reports[service.name].as_dict()}
    section = inference_summary(frames["requests"], frames["replicas"], run.end_time, services)
    paged = {index for index, service in enumerate(inference.services) if service.paged_kv is not None}
    if paged:  # only then: the outputs of runs without paged KV stay as they were
        kv_frames, section["kv_cache"] = kv_cache_results(
            model.serving.requests, [s.name for s in inference.services], paged,
            [r for r in model.serving.engine.replicas if r.paged])  # type: ignore[misc]
        frames.update(kv_frames)
    if model.serving.decoders:  # disaggregated services: KV transfers, pools, goodput
        frames.update(disaggregation_frames(model.serving.decoders, model.serving.requests))
        for decoder in model.serving.decoders:
            section["services"][decoder.name]["disaggregation"] = disaggregation_section(
                decoder.name, frames["requests"], frames["replicas"], frames["pools"], frames["kv_transfers"],
                run.end_time)
    return Contribution(frames=frames, sections={"inference": section})


def _network(run: RunFrames) -> Contribution | None:
    recorder = run.model.recorder
    if not recorder.link_info:
        return None
    rows = recorder.link_rows  # joined from the recorder's chunks: once
    frames = {"links": links_frame(recorder.link_info, rows, run.end_time),
              "link_timeseries": link_timeseries_frame(recorder.link_info, rows, run.end_time)}
    return Contribution(frames=frames, sections={"network": network_summary(frames["links"])})


def _storage(run: RunFrames) -> Contribution | None:
    recorder = run.model.recorder
    if not recorder.storage_info:
        return None
    timeseries = storage_timeseries_frame(recorder.storage_rows, run.end_time)
    return Contribution(frames={"storage_timeseries": timeseries},
                        sections={"storage": storage_summary(timeseries, recorder.storage_info)})


def _failures(run: RunFrames) -> Contribution | None:
    model = run.model
    if model.failures is None:
        return None
    frame = failures_frame(model.failures.log.rows)
    checkpoint = getattr(model.scenario.workload.training, "checkpoint", None)
    losses = model.serving.engine.losses if model.serving is not None else None
    serving = {"replicas_lost": losses.replicas_lost, "requests_retried": losses.retries,
               "requests_failed": losses.dropped} if losses is not None else None
    section = failure_summary(frame, run.jobs, sum(model.cluster.capacity.values()), run.end_time,
                              stalled_checkpoints=checkpoint is not None and checkpoint.mode == "stall",
                              serving=serving)
    return Contribution(frames={"failures": frame}, sections={"failures": section})


def _power(run: RunFrames) -> Contribution | None:
    governor = run.model.power
    if governor is None:
        return None
    frame = power_policy_frame(governor.rows, run.end_time)
    wakes = governor.nodes.wakes if governor.nodes is not None else 0
    section = power_summary(str(governor.policy.name), frame, run.timeseries, run.model.jobs, wakes,
                            governor.deferred_s)
    return Contribution(frames={"power_policy": frame}, sections={"power": section})


def _energy(run: RunFrames) -> Contribution | None:
    """Only when the energy section uses a series, weather or a facility model (else summarize's constant-PUE
    energy section stands, unchanged); replaces the timeseries and appends per-job and per-request columns."""
    from dcsim.energy.subsystem import energy_contribution

    model = run.model
    if model.energy is None:
        return None
    frames, section = energy_contribution(model, run.end_time, run.jobs, run.timeseries, run.produced)
    return Contribution(frames=frames, sections={"energy": section})


def _hardware(run: RunFrames) -> Contribution | None:
    section = hardware_section(run.model)
    return None if section is None else Contribution(sections={"hardware": section})


TRAINING_HEADLINE = {
    "wait_mean_s": ("training", "wait_s", "mean"),
    "wait_p95_s": ("training", "wait_s", "p95"),
    "jct_mean_s": ("training", "jct_s", "mean"),
    "jct_p95_s": ("training", "jct_s", "p95"),
    "slowdown_mean": ("training", "slowdown", "mean"),
    "makespan_s": ("training", "makespan_s"),
    # under preemptive schedulers only (n/a for the others)
    "job_preemptions": ("training", "preemption", "preemptions"),
    "overhead_accelerator_hours": ("training", "preemption", "overhead_accelerator_hours"),
    "bounded_slowdown_mean": ("training", "bounded_slowdown", "mean"),
    "jain_slowdown": ("training", "fairness", "jain_slowdown"),
    "finish_time_fairness_max": ("training", "fairness", "finish_time_fairness", "max"),
}
INFERENCE_HEADLINE = {
    "ttft_p50_s": ("inference", "ttft_s", "p50"),
    "ttft_p99_s": ("inference", "ttft_s", "p99"),
    "tpot_p99_s": ("inference", "tpot_s", "p99"),
    "e2e_mean_s": ("inference", "e2e_s", "mean"),
    "e2e_p99_s": ("inference", "e2e_s", "p99"),
    "slo_attainment": ("inference", "slo_attainment"),
    "tokens_per_s": ("inference", "tokens_per_s"),
    "energy_per_token_j": ("inference", "energy_per_output_token_j"),
    "preemptions": ("inference", "preemptions"),
}

FAILURE_HEADLINE = {
    "ettr": ("failures", "ettr"),
    "job_interruptions": ("failures", "job_interruptions"),
    "lost_accelerator_hours": ("failures", "lost_accelerator_hours"),
    "accelerator_availability": ("failures", "accelerator_availability"),
}

POWER_HEADLINE = {
    "peak_it_w": ("power", "peak_it_w"),
    "over_budget_s": ("power", "over_budget_s"),
    "capped_accelerator_hours": ("power", "capped_accelerator_hours"),
    "shutdown_node_hours": ("power", "shutdown_node_hours"),
    "deferred_hours": ("power", "deferral", "deferred_hours"),
    "deadlines_missed": ("power", "deferral", "deadlines_missed"),
}

ENERGY_HEADLINE = {  # with series, weather or a facility model only
    "energy_cost": ("energy", "cost"),
    "water_l": ("energy", "water_l"),
    "pue_time_mean": ("energy", "pue_time_mean"),
    "peak_power_kw": ("energy", "peak_power_kw"),
    "jobs_carbon_kg": ("energy", "jobs_carbon_kg"),
    "jobs_carbon_g_per_kwh": ("energy", "jobs_carbon_g_per_kwh"),
}

CORE_HEADLINE = {  # what every run has
    "busy_utilization": ("utilization", "busy", "all"),
    "allocated_utilization": ("utilization", "allocated", "all"),
    "facility_kwh": ("energy", "facility_kwh"),
    "carbon_kg": ("energy", "carbon_kg"),
}

SUBSYSTEMS: tuple[Subsystem, ...] = (
    Subsystem("training", ("cluster",), _training, TRAINING_HEADLINE, lambda s: s.workload.training is not None),
    Subsystem("inference", ("training", "cluster"), _inference, INFERENCE_HEADLINE,
              lambda s: s.workload.inference is not None),
    Subsystem("network", ("utilization",), _network, present=lambda s: s.network is not None),
    Subsystem("storage", ("network", "utilization"), _storage, present=lambda s: s.storage is not None),
    Subsystem("failures", ("inference", "training", "cluster"), _failures, FAILURE_HEADLINE,
              lambda s: s.failures is not None),
    Subsystem("power", ("failures", "inference", "training", "cluster"), _power, POWER_HEADLINE,
              lambda s: s.policies.power.name != "none"),
    Subsystem("hardware", ("utilization",), _hardware, present=lambda s: bool(s.accelerators or s.catalog)),
    Subsystem("energy", ("energy",), _energy, ENERGY_HEADLINE, lambda s: s.energy.uses_series),  # replaces it
)


def headline_metrics() -> dict[str, tuple[str, ...]]:
    """The metrics `dcsim compare` tabulates: each subsystem's in list order, then those every run has."""
    metrics: dict[str, tuple[str, ...]] = {}
    for subsystem in SUBSYSTEMS:
        metrics.update(subsystem.headline)
    return {**metrics, **CORE_HEADLINE}
