"""The summary tables of each subsystem's report section: training, inference, network and storage.

Each reads the summary.json section of its subsystem only and returns "" when the run has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dcsim.reporting.format import (
    INFERENCE_LATENCIES,
    STAT_KEYS,
    duration,
    esc,
    latency,
    number,
    percent,
    rate,
    size,
    stat_rows,
    table,
    with_unit,
)


def training_tables(s: Mapping[str, Any]) -> str:
    t = s.get("training")
    if not isinstance(t, Mapping):
        return ""
    counts = [[esc(k.removeprefix("jobs_")), esc(number(t.get(k)))]
              for k in ("jobs_submitted", "jobs_completed", "jobs_unfinished", "jobs_rejected", "jobs_failed")
              if k in t]
    counts.append(["makespan", esc(duration(t.get("makespan_s")))])
    times = table(["", *STAT_KEYS], stat_rows(t, ("wait_s", "jct_s")), "times")
    slow = table(["", *STAT_KEYS], stat_rows(t, ("slowdown",), number), "slowdown (JCT / run time)")
    share_rows = stat_rows(t, ("comm_share", "io_share"), percent)
    shares = table(["", *STAT_KEYS], share_rows, "share of computing time") if share_rows else ""
    return f"<h2>Training jobs</h2>{table(['jobs', ''], counts)}{times}{slow}{shares}"


def inference_tables(s: Mapping[str, Any]) -> str:
    """Counts, latency percentiles, rejections and a per-service breakdown of the serving summary."""
    inf = s.get("inference")
    if not isinstance(inf, Mapping):
        return ""
    counts = [[esc(k.replace("_", " ")), esc(number(inf.get(k)))]
              for k in ("requests", "completed", "rejected", "unfinished", "preemptions", "output_tokens")]
    counts += [["tokens/s", esc(number(inf.get("tokens_per_s")))],
               ["SLO attainment", esc(percent(inf.get("slo_attainment")))],
               ["energy per output token", esc(with_unit(inf.get("energy_per_output_token_j"), "J"))],
               ["serving energy", esc(with_unit(inf.get("serving_energy_kwh"), "kWh"))],
               ["replica busy fraction", esc(percent(inf.get("replica_busy_fraction")))]]
    stats = table(["", *STAT_KEYS], stat_rows(inf, INFERENCE_LATENCIES, latency), "latency")
    reasons = inf.get("rejected_by_reason")
    rejected = ""
    if isinstance(reasons, Mapping) and reasons:
        rejected = table(["rejected because", "requests"],
                         [[esc(reason), esc(number(count))] for reason, count in reasons.items()])
    return f"<h2>Inference requests</h2>{table(['requests', ''], counts)}{stats}{rejected}{_services(inf)}"


def _services(inf: Mapping[str, Any]) -> str:
    services = inf.get("services")
    if not isinstance(services, Mapping) or not services:
        return ""
    rows = []
    for name, svc in services.items():
        svc = svc if isinstance(svc, Mapping) else {}
        rows.append([esc(name), esc(number(svc.get("requests"))), esc(number(svc.get("completed"))),
                     esc(latency(_stat(svc, "ttft_s", "p99"))), esc(latency(_stat(svc, "tpot_s", "p99"))),
                     esc(percent(svc.get("slo_attainment"))), esc(number(svc.get("tokens_per_s")))])
    header = ["service", "requests", "completed", "p99 TTFT", "p99 TPOT", "SLO attainment", "tokens/s"]
    return table(header, rows, "per service")


def _stat(section: Mapping[str, Any], key: str, stat: str) -> Any:
    stats = section.get(key)
    return stats.get(stat) if isinstance(stats, Mapping) else None


def network_storage_tables(s: Mapping[str, Any]) -> str:
    """Network summary and busiest links, per-tier storage table, and the energy both drew."""
    net, storage = s.get("network"), s.get("storage")
    if not isinstance(net, Mapping) and not isinstance(storage, Mapping):
        return ""
    energy = (s.get("energy") or {}).get("by_component_kwh") or {}
    parts = []
    if isinstance(net, Mapping):
        rows = [["links", esc(number(net.get("links")))],
                ["mean utilization", esc(percent(net.get("mean_utilization")))],
                ["bytes carried", esc(size(net.get("bytes_carried")))],
                ["network energy", esc(with_unit(energy.get("network"), "kWh"))]]
        parts.append(table(["network", ""], rows, "links between nodes (storage links left out)"))
        busiest = [link for link in net.get("busiest") or [] if isinstance(link, Mapping)]
        if busiest:
            rows = [[esc(link.get("link")), esc(f"{link.get('source')} → {link.get('target')}"), esc(link.get("tier")),
                     esc(percent(link.get("mean_utilization"))), esc(percent(link.get("peak_utilization")))]
                    for link in busiest]
            parts.append(table(["link", "from → to", "tier", "mean", "peak"], rows, "busiest links (utilization)"))
    if isinstance(storage, Mapping):
        rows = []
        for name, tier in storage.items():
            tier = tier if isinstance(tier, Mapping) else {}
            rows.append([esc(name), esc(tier.get("kind") or "–"), esc(size(tier.get("capacity_bytes"))),
                         esc(size(tier.get("peak_used_bytes"))), esc(size(tier.get("final_used_bytes"))),
                         esc(size(tier.get("read_bytes"))), esc(size(tier.get("written_bytes"))),
                         esc(rate(tier.get("peak_read_Bps"))), esc(rate(tier.get("peak_write_Bps")))])
        header = ["tier", "kind", "capacity", "peak used", "final used", "read", "written", "peak read",
                  "peak write"]
        parts.append(table(header, rows, "storage tiers"))
        parts.append(table(["storage", ""], [["storage energy", esc(with_unit(energy.get("storage"), "kWh"))]]))
    return "<h2>Network and storage</h2>" + "".join(parts)


