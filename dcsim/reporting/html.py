"""report.html: one self-contained page (inline CSS, charts as data URIs) for a single run.

Self-contained so the file can be mailed or archived on its own. The page is the header, then the
report sections of reporting/sections.py in order (each only when its run has it), the policies
that applied, and the charts. This module names no subsystem.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dcsim.reporting.charts import chart_notes
from dcsim.reporting.format import duration, esc, number, table, wall
from dcsim.reporting.sections import CAPTIONS, CLAIMED_FAMILIES, ReportSection, present_sections
from dcsim.results import RunResult

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




# --- page parts ----------------------------------------------------------------------------------
def _header(result: RunResult) -> str:
    s, scenario = result.summary, result.scenario
    name = s.get("scenario") or scenario.get("name", "")
    items = [("seed", result.seed), ("dcsim", result.version), ("simulated", duration(s.get("sim_time_s"))),
             ("wall time", wall(s.get("wall_time_s"))), ("events", number(s.get("events")))]
    meta = "".join(f"<span><b>{esc(k)}:</b> {esc(v)}</span>" for k, v in items)
    description = scenario.get("description") or ""
    desc = f"<p>{esc(description)}</p>" if description else ""
    return f'<h1>dcsim report: {esc(name)}</h1>{desc}<p class="meta">{meta}</p>'


def _policies(scenario: Mapping[str, Any], sections: Iterable[ReportSection]) -> str:
    """The policies that applied: families that belong to a section the run lacks are left out."""
    policies = scenario.get("policies") or {}
    shown = {family for section in sections for family in section.policy_families}
    rows = []
    for family, spec in policies.items():
        if family in CLAIMED_FAMILIES and family not in shown:
            continue
        if isinstance(spec, Mapping):
            name, params = spec.get("name", ""), spec.get("params") or {}
        else:
            name, params = spec, {}
        text = ", ".join(f"{k}={v}" for k, v in params.items()) if isinstance(params, Mapping) else params
        rows.append([esc(family), f"<code>{esc(name)}</code>", esc(text or "defaults")])
    return "<h2>Policies</h2>" + (table(["family", "policy", "parameters"], rows) if rows else "<p>none</p>")


def _charts(charts: Iterable[Path], notes: Sequence[str], failures: Sequence[str]) -> str:
    figures = []
    for path in charts:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        caption = CAPTIONS.get(Path(path).stem, Path(path).stem.replace("_", " "))
        figures.append(f'<figure><img alt="{esc(Path(path).stem)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{esc(caption)}</figcaption></figure>")
    warning = ""
    if failures:
        items = "".join(f"<li>{esc(line)}</li>" for line in failures)
        warning = (f'<div class="warn"><b>{len(failures)} chart{"s" if len(failures) > 1 else ""} could not be '
                   f"drawn</b> (the frames and summary are complete):<ul>{items}</ul></div>")
    remarks = "".join(f'<p class="meta">{esc(note)}</p>' for note in notes)
    if not (figures or warning or remarks):
        return ""
    return "<h2>Charts</h2>" + warning + remarks + "".join(figures)


def write_report_html(result: RunResult, folder: Path, charts: list[Path], failures: Sequence[str] = ()) -> Path:
    """Write `folder/report.html` from the summary, the resolved scenario and the chart PNGs; `failures`
    names charts that could not be drawn, and the page says so."""
    s = result.summary
    name = s.get("scenario") or result.scenario.get("name", "")
    sections = present_sections(result)
    body = "".join([_header(result), *(section.html(result) for section in sections),
                    _policies(result.scenario, sections), _charts(charts, chart_notes(result), failures)])
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>dcsim: {esc(name)}</title>'
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")
    path = Path(folder) / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
