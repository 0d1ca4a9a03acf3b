"""Charts and the HTML report, drawn from RunResults only (never from the live model).

Keeping reporting on saved results means a reloaded RunResult redraws exactly what `dcsim run` drew.
Inference, network and storage charts are added here rather than inside write_run_charts: their
modules build on the helpers of charts.py, and composing them here keeps that dependency one-way.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from html import escape  # not `import html`: the package's html module would shadow it
from pathlib import Path

from dcsim.reporting.charts import chart_notes, run_charts, write_run_charts
from dcsim.reporting.comparison import write_comparison_charts
from dcsim.reporting.drawing import Chart, ChartFiles, describe, draw_each
from dcsim.reporting.html import write_report_html
from dcsim.reporting.inference_charts import inference_charts, write_inference_charts
from dcsim.reporting.network_charts import network_charts, write_network_charts
from dcsim.results import RunResult

__all__ = ["CHART_GROUPS", "ReportFiles", "chart_notes", "write_comparison_charts", "write_inference_charts",
           "write_network_charts", "write_report", "write_report_html", "write_run_charts"]

CHART_GROUPS: tuple[tuple[str, Callable[[RunResult], list[Chart]]], ...] = (
    ("cluster and training charts", run_charts), ("inference charts", inference_charts),
    ("network and storage charts", network_charts))

ReportFiles = ChartFiles  # what write_report returns: the paths, report.html last, and `failures`


def write_report(result: RunResult, folder: Path) -> ReportFiles:
    """Write the run's charts (cluster, training, inference, network and storage) and report.html into the
    existing `folder`, drawing each chart on its own.

    A chart that raises is left out and named in `failures` (and on the page) rather than stopping the
    report: the simulation has already run, and its frames and summary must not be lost to a chart.
    """
    folder = Path(folder)
    charts = draw_each([(group, partial(listed, result)) for group, listed in CHART_GROUPS], folder)
    try:
        page = write_report_html(result, folder, charts)
        if charts.failures:
            _list_failures(page, charts.failures)
    except Exception as exc:  # the charts and the caller's frames stay; the failure is reported
        return ReportFiles(charts, [*charts.failures, f"report.html: {describe(exc)}"])
    return ReportFiles([*charts, page], charts.failures)


def _list_failures(page: Path, failures: list[str]) -> None:
    """Add a warning that lists the charts that failed, before the charts section (or at the end).

    Until write_report_html takes the failures itself, the page is amended here."""
    items = "".join(f"<li>{escape(line)}</li>" for line in failures)
    warning = (f'<div class="warn"><b>{len(failures)} chart{"s" if len(failures) > 1 else ""} could not be '
               f"drawn</b> (the frames and summary are complete):<ul>{items}</ul></div>")
    text = page.read_text(encoding="utf-8")
    anchor = "<h2>Charts</h2>" if "<h2>Charts</h2>" in text else "</body>"
    page.write_text(text.replace(anchor, warning + anchor, 1), encoding="utf-8")
