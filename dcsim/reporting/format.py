"""Formatting for report.html: escaping, numbers with units, tables. Shared by every report section.

Every string from the scenario or summary is HTML-escaped: scenario names and descriptions are user text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

from dcsim.units import format_duration

STAT_KEYS = ("mean", "p50", "p95", "p99", "max")
LABELS = {"wait_s": "wait", "jct_s": "JCT", "ttft_s": "TTFT", "tpot_s": "TPOT", "e2e_s": "end to end",
          "queue_delay_s": "queue delay", "comm_share": "communication", "io_share": "I/O"}
INFERENCE_LATENCIES = ("ttft_s", "tpot_s", "e2e_s", "queue_delay_s")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def duration(value: Any) -> str:
    return format_duration(float(value)) if is_number(value) else "–"


def number(value: Any, digits: int = 3) -> str:
    if not is_number(value):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def latency(value: Any) -> str:
    """Sub-second values in ms: a 20 ms TPOT would read "0.0 s" through duration()."""
    if not is_number(value):
        return "–"
    ms = 1e3 * float(value)
    return f"{ms:.3g} ms" if abs(ms) < 999.5 else duration(value)


def with_unit(value: Any, unit: str) -> str:
    return f"{number(value)} {unit}" if is_number(value) else "–"


def percent(value: Any) -> str:
    return f"{100 * float(value):.1f}%" if is_number(value) else "–"


def wall(value: Any) -> str:
    """Wall time is often under a second, where format_duration's one decimal shows 0.0 s."""
    return f"{float(value):.3g} s" if is_number(value) and float(value) < 1 else duration(value)


def is_number(value: Any) -> bool:
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


def size(value: Any) -> str:
    """Bytes in decimal units (GB, TB): link and storage figures are quoted that way."""
    if not is_number(value):
        return "–"
    amount = float(value)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(amount) < 1000 or unit == "PB":
            return f"{amount:.3g} {unit}"
        amount /= 1000
    return f"{amount:.3g} PB"  # not reached


def rate(value: Any) -> str:
    return f"{size(value)}/s" if is_number(value) else "–"
