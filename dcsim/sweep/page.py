"""sweep.html: one self-contained page (charts as data URIs) with the sweep's summary and charts."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dcsim.reporting.format import esc
from dcsim.reporting.html import CSS


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else (f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}")
    return esc(value)


def sweep_page(title: str, facts: Sequence[tuple[str, object]], summary: pd.DataFrame, params: Sequence[str],
               metrics: Sequence[str], charts: Sequence[Path], notes: Sequence[str] = ()) -> str:
    """The page: header facts, notes (failed runs), the per-point table (mean ± 95% CI), the charts."""
    head = "".join(f"<span>{esc(name)}: <b>{esc(value)}</b></span>" for name, value in facts)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1><p class='meta'>{head}</p>"]
    parts += [f"<p class='warn'>{esc(note)}</p>" for note in notes]
    columns = [*params, "runs", "failed", *metrics]
    rows = ["<tr>" + "".join(f"<th>{esc(c)}</th>" for c in columns) + "</tr>"]
    for _, row in summary.iterrows():
        cells = [_cell(row[p]) for p in params] + [_cell(row["runs"]), _cell(row["failed"])]
        for metric in metrics:
            mean, half = row.get(f"{metric}_mean"), row.get(f"{metric}_ci95")
            text = _cell(mean)
            if isinstance(half, float) and not math.isnan(half):
                text += f" ± {_cell(half)}"
            cells.append(text)
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("<h2>Points (mean ± 95% CI over seeds)</h2><table>" + "".join(rows) + "</table>")
    if charts:
        parts.append("<h2>Charts</h2>")
    for chart in charts:
        data = base64.b64encode(chart.read_bytes()).decode()
        parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{esc(chart.name)}'>"
                     f"<figcaption>{esc(chart.name)}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
