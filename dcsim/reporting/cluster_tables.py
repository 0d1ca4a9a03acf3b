"""The report sections every run has: the workload read, utilization and queue, energy and carbon."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dcsim.reporting.format import esc, is_number, number, percent, table


def workload_tables(s: Mapping[str, Any]) -> str:
    w = s.get("workload")
    if not isinstance(w, Mapping):
        return ""
    skipped = w.get("skipped") or {}
    examples = w.get("skipped_example_lines") or {}
    warn = ""
    if skipped:
        total = sum(v for v in skipped.values() if is_number(v))
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


def utilization_queue_tables(s: Mapping[str, Any]) -> str:
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


def energy_tables(s: Mapping[str, Any]) -> str:
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
    total = sum(v for v in parts.values() if is_number(v))
    comp = [[esc(k), f"{esc(number(v))} kWh", esc(percent(v / total) if total and is_number(v) else "–")]
            for k, v in parts.items()]
    return (f"<h2>Energy and carbon</h2>{table(['energy', ''], rows)}"
            f"{table(['component', 'energy', 'share'], comp)}")
