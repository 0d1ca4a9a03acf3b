"""The sections of a run's report, listed once in SECTIONS, in page order.

Each section draws its tables from its summary.json section and its charts from the run's frames,
and appears only when the run has it (`summary_keys`; empty = every run). It also names the policy
families that belong to it, so the report lists only the policies that applied. html.py and
write_report iterate this list and name no subsystem. The run side has its own list
(dcsim/subsystems.py), because reporting reads saved results only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dcsim.reporting.charts import run_charts
from dcsim.reporting.cluster_tables import energy_tables, utilization_queue_tables, workload_tables
from dcsim.reporting.drawing import Chart
from dcsim.reporting.energy_charts import ENERGY_CAPTIONS, energy_charts, energy_detail_tables
from dcsim.reporting.failure_report import FAILURE_CAPTIONS, failure_charts, failure_tables
from dcsim.reporting.hardware_tables import hardware_tables
from dcsim.reporting.inference_charts import inference_charts
from dcsim.reporting.network_charts import network_charts
from dcsim.reporting.summary_tables import inference_tables, network_storage_tables, training_tables
from dcsim.reporting.tenant_charts import tenant_charts
from dcsim.results import RunResult

ChartLister = Callable[[RunResult], list[Chart]]  # the section's charts, not yet drawn (drawing.py draws)


@dataclass(frozen=True)
class ReportSection:
    name: str
    summary_keys: tuple[str, ...]  # present when the summary has any of these; () = always
    tables: Callable[[Mapping[str, Any]], str]  # HTML from the whole summary
    charts: ChartLister | None = None
    policy_families: tuple[str, ...] = ()
    captions: Mapping[str, str] = field(default_factory=dict)  # chart file stem -> caption

    def html(self, result: RunResult) -> str:
        return self.tables(result.summary)

    def present(self, summary: Mapping[str, Any]) -> bool:
        return not self.summary_keys or any(key in summary for key in self.summary_keys)


TRAINING_CAPTIONS = {
    "tenant_share": "Accelerators each tenant's jobs held over time (stacked), with the tenants' guaranteed "
                    "quotas dashed.",
}
CLUSTER_CAPTIONS = {
    "utilization": "Allocated (shaded) and busy (line) fraction of each accelerator model's capacity.",
    "queue": "Number of jobs waiting to start.",
    "wait_jct_cdf": "Empirical CDFs of wait (started jobs) and job completion time (completed jobs).",
    "power": "Facility power (IT x PUE) and IT power.",
    "gantt": "Each job from submission to end: a thin bar while it waits, solid while it holds accelerators "
             "(lighter while starting or restoring, dark while suspending to a checkpoint).",
}
INFERENCE_CAPTIONS = {
    "latency_cdf": "Empirical CDFs of time to first token, time per output token and end-to-end latency "
                   "per service; dashed lines are SLO targets.",
    "latency_over_time": "Median and p99 TTFT and TPOT of requests binned by arrival time, per service.",
    "replica_batch_kv": "Requests in each replica's batch and its KV-cache use as a share of capacity.",
    "slo_attainment": "Share of completed requests meeting their service's TTFT and TPOT targets, whole run "
                      "and by arrival time.",
}
NETWORK_CAPTIONS = {
    "link_utilization": "Utilization (carried bytes/s over bandwidth) of the busiest network links over time.",
    "storage": "Read and write throughput of each storage tier, and its used share of capacity.",
}

SECTIONS: tuple[ReportSection, ...] = (
    ReportSection("workload", ("workload",), workload_tables),
    ReportSection("training", ("training",), training_tables, tenant_charts, ("scheduler", "placement"),
                  TRAINING_CAPTIONS),
    ReportSection("cluster", (), utilization_queue_tables, run_charts, captions=CLUSTER_CAPTIONS),
    ReportSection("hardware", ("hardware",), hardware_tables),
    ReportSection("inference", ("inference",), inference_tables, inference_charts,
                  ("replica_scheduler", "balancer", "autoscaler"), INFERENCE_CAPTIONS),
    ReportSection("failures", ("failures",), failure_tables, failure_charts, captions=FAILURE_CAPTIONS),
    ReportSection("network and storage", ("network", "storage"), network_storage_tables, network_charts,
                  captions=NETWORK_CAPTIONS),
    ReportSection("energy", (), lambda s: energy_tables(s) + energy_detail_tables(s), energy_charts,
                  ("power",), ENERGY_CAPTIONS),
)

CLAIMED_FAMILIES = frozenset(family for section in SECTIONS for family in section.policy_families)
CAPTIONS = {stem: text for section in SECTIONS for stem, text in section.captions.items()}


def present_sections(result: RunResult) -> list[ReportSection]:
    return [section for section in SECTIONS if section.present(result.summary)]
