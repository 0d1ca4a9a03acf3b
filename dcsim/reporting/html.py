"""report.html: one self-contained page (inline CSS, charts as data URIs) for a single run.

Self-contained so the file can be mailed or archived on its own; every string from the scenario or
summary is HTML-escaped because scenario names and descriptions are user text.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dcsim.results import RunResult
from dcsim.units import format_duration

STAT_KEYS = ("mean", "p50", "p95", "p99", "max")
LABELS = {"wait_s": "wait", "jct_s": "JCT", "ttft_s": "TTFT", "tpot_s": "TPOT", "e2e_s": "end to end",
          "queue_delay_s": "queue delay", "comm_share": "communication", "io_share": "I/O"}
INFERENCE_LATENCIES = ("ttft_s", "tpot_s", "e2e_s", "queue_delay_s")

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.4; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; } .meta span { margin-right: 1.5em; white-space: nowrap; }
table { border-collapse: collapse; margin: 0.6em 1.5em 0.6em 0; display: inline-table; vertical-align: top; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.warn { background: #fff4e0; border: 1px solid #e0a040; padding: 0.6em 1em; border-radius: 4px; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } code { background: #f4f4f4; padding: 0 0.2em; }
"""

CAPTIONS = {
    "utilization": "Allocated (shaded) and busy (line) fraction of each accelerator model's capacity.",
    "queue": "Number of jobs waiting to start.",
    "wait_jct_cdf": "Empirical CDFs of wait (started jobs) and job completion time (completed jobs).",
    "power": "Facility power (IT x PUE) and IT power.",
    "gantt": "Each job from start to end; the thin bar before it is its wait since submission.",
    "latency_cdf": "Empirical CDFs of time to first token, time per output token and end-to-end latency "
                   "per service; dashed lines are SLO targets.",
    "latency_over_time": "Median and p99 TTFT and TPOT of requests binned by arrival time, per service.",
    "replica_batch_kv": "Requests in each replica's batch and its KV-cache use as a share of capacity.",
    "slo_attainment": "Share of completed requests meeting their service's TTFT and TPOT targets, whole run "
                      "and by arrival time.",
    "link_utilization": "Utilization (carried bytes/s over bandwidth) of the busiest network links over time.",
    "storage": "Read and write throughput of each storage tier, and its used share of capacity.",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def duration(value: Any) -> str:
    return format_duration(float(value)) if _is_number(value) else "–"


def number(value: Any, digits: int = 3) -> str:
    if not _is_number(value):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def latency(value: Any) -> str:
    """Sub-second values in ms: a 20 ms TPOT would read "0.0 s" through duration()."""
    if not _is_number(value):
        return "–"
    ms = 1e3 * float(value)
    return f"{ms:.3g} ms" if abs(ms) < 999.5 else duration(value)


def with_unit(value: Any, unit: str) -> str:
    return f"{number(value)} {unit}" if _is_number(value) else "–"


def percent(value: Any) -> str:
    return f"{100 * float(value):.1f}%" if _is_number(value) else "–"


def _wall(value: Any) -> str:
    """Wall time is often under a second, where format_duration's one decimal shows 0.0 s."""
    return f"{float(value):.3g} s" if _is_number(value) and float(value) < 1 else duration(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def table(header: Iterable[str], rows: Iterable[Iterable[str]], caption: str = "") -> str:
    """An HTML table; header and caption are escaped here, cells must already be escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def stat_rows(section: Mapping[str, Any], keys: Iterable[str], fmt: Any = duration) -> list[list[str]]:
    rows = []
    for key in keys:
        stats = section.get(key)
        if isinstance(stats, Mapping):
            label = LABELS.get(key, key.removesuffix("_s"))
            rows.append([esc(label), *(esc(fmt(stats.get(k))) for k in STAT_KEYS)])
    return rows


# --- sections ---------------------------------------------------------------------------------------
def _header(result: RunResult) -> str:
    s, scenario = result.summary, result.scenario
    name = s.get("scenario") or scenario.get("name", "")
    items = [("seed", result.seed), ("dcsim", result.version), ("simulated", duration(s.get("sim_time_s"))),
             ("wall time", _wall(s.get("wall_time_s"))), ("events", number(s.get("events")))]
    meta = "".join(f"<span><b>{esc(k)}:</b> {esc(v)}</span>" for k, v in items)
    description = scenario.get("description") or ""
    desc = f"<p>{esc(description)}</p>" if description else ""
    return f'<h1>dcsim report: {esc(name)}</h1>{desc}<p class="meta">{meta}</p>'


def _training(s: Mapping[str, Any]) -> str:
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


def _inference(s: Mapping[str, Any]) -> str:
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


def _utilization_queue(s: Mapping[str, Any]) -> str:
    util = s.get("utilization") or {}
    allocated, busy = util.get("allocated") or {}, util.get("busy") or {}
    rows = [[esc(m), esc(percent(allocated.get(m))), esc(percent(busy.get(m)))]
            for m in dict.fromkeys([*allocated, *busy])]
    out = "<h2>Utilization and queue</h2>" + table(["accelerator", "allocated", "busy"], rows,
                                                   "time-weighted mean")
    queue = s.get("queue") or {}
    qrows = [["mean length", esc(number(queue.get("length_mean")))],
             ["max length", esc(number(queue.get("length_max")))]]
    return out + table(["queue", ""], qrows)


def _energy(s: Mapping[str, Any]) -> str:
    e = s.get("energy")
    if not isinstance(e, Mapping):
        return ""
    rows = [["IT energy", f"{esc(number(e.get('it_kwh')))} kWh"],
            ["facility energy", f"{esc(number(e.get('facility_kwh')))} kWh"],
            ["PUE", esc(number(e.get("pue")))],
            ["average facility power", f"{esc(number(e.get('avg_power_kw')))} kW"],
            ["peak facility power", f"{esc(number(e.get('peak_power_kw')))} kW"],
            ["carbon", f"{esc(number(e.get('carbon_kg')))} kg CO2e"]]
    parts = e.get("by_component_kwh") or {}
    total = sum(v for v in parts.values() if _is_number(v))
    comp = [[esc(k), f"{esc(number(v))} kWh", esc(percent(v / total) if total and _is_number(v) else "–")]
            for k, v in parts.items()]
    return (f"<h2>Energy and carbon</h2>{table(['energy', ''], rows)}"
            f"{table(['IT component', 'energy', 'share'], comp)}")


def _network_storage(s: Mapping[str, Any]) -> str:
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


def size(value: Any) -> str:
    """Bytes in decimal units (GB, TB): link and storage figures are quoted that way."""
    if not _is_number(value):
        return "–"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(amount) < 1000 or unit == "PB":
            return f"{amount:.3g} {unit}"
        amount /= 1000
    return f"{amount:.3g} PB"  # not reached


def rate(value: Any) -> str:
    return f"{size(value)}/s" if _is_number(value) else "–"


def _policies(scenario: Mapping[str, Any]) -> str:
    policies = scenario.get("policies") or {}
    rows = []
    for family, spec in policies.items():
        if isinstance(spec, Mapping):
            name, params = spec.get("name", ""), spec.get("params") or {}
        else:
            name, params = spec, {}
        text = ", ".join(f"{k}={v}" for k, v in params.items()) if isinstance(params, Mapping) else params
        rows.append([esc(family), f"<code>{esc(name)}</code>", esc(text or "defaults")])
    return "<h2>Policies</h2>" + (table(["family", "policy", "parameters"], rows) if rows else "<p>none</p>")


def _workload(s: Mapping[str, Any]) -> str:
    w = s.get("workload")
    if not isinstance(w, Mapping):
        return ""
    skipped = w.get("skipped") or {}
    examples = w.get("skipped_example_lines") or {}
    warn = ""
    if skipped:
        total = sum(v for v in skipped.values() if _is_number(v))
        rows = [[esc(reason), esc(number(count)), esc(_examples(examples.get(reason)))]
                for reason, count in skipped.items()]
        warn = (f'<div class="warn"><b>{esc(number(total))} workload rows were skipped.</b>'
                f"{table(['reason', 'rows', 'example lines'], rows)}</div>")
    rows = [[esc(k.replace("_", " ")), esc(v if isinstance(v, str) else number(v))]
            for k, v in w.items()
            if k not in ("skipped", "skipped_example_lines") and not isinstance(v, Mapping | list)]
    return f"<h2>Workload</h2>{warn}{table(['workload', ''], rows)}"


def _examples(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value[:10])
    return "" if value is None else str(value)


def _charts(charts: Iterable[Path]) -> str:
    figures = []
    for path in charts:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        caption = CAPTIONS.get(Path(path).stem, Path(path).stem.replace("_", " "))
        figures.append(f'<figure><img alt="{esc(Path(path).stem)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{esc(caption)}</figcaption></figure>")
    return "<h2>Charts</h2>" + "".join(figures) if figures else ""


def write_report_html(result: RunResult, folder: Path, charts: list[Path]) -> Path:
    """Write `folder/report.html` from the summary, the resolved scenario and the chart PNGs."""
    s = result.summary
    name = s.get("scenario") or result.scenario.get("name", "")
    body = "".join([_header(result), _workload(s), _training(s), _inference(s), _utilization_queue(s),
                    _network_storage(s), _energy(s), _policies(result.scenario), _charts(charts)])
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>dcsim: {esc(name)}</title>'
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")
    path = Path(folder) / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
