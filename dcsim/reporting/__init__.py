"""Charts and the HTML report, drawn from RunResults only (never from the live model).

Keeping reporting on saved results means a reloaded RunResult redraws exactly what `dcsim run` drew.
The report's sections, their tables and their charts are listed in reporting/sections.py;
write_report iterates them and names no subsystem.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from dcsim.reporting.charts import chart_notes, write_run_charts
from dcsim.reporting.comparison import write_comparison_charts
from dcsim.reporting.drawing import ChartFiles, describe, draw_each
from dcsim.reporting.html import write_report_html
from dcsim.reporting.inference_charts import write_inference_charts
from dcsim.reporting.network_charts import write_network_charts
from dcsim.results import RunResult

__all__ = ["ReportFiles", "chart_notes", "write_comparison_charts", "write_inference_charts",
           "write_network_charts", "write_report", "write_report_html", "write_run_charts"]

ReportFiles = ChartFiles  # what write_report returns: the paths, report.html last, and `failures`


def write_report(result: RunResult, folder: Path) -> ReportFiles:
    """Write the charts of every section the run has, and report.html, into the existing `folder`,
    drawing each chart on its own.

    A chart that raises is left out and named in `failures` (and on the page) rather than stopping the
    report: the simulation has already run, and its frames and summary must not be lost to a chart.
    """
    from dcsim.reporting.sections import present_sections

    folder = Path(folder)
    groups = [(f"{section.name} charts", partial(section.charts, result))
              for section in present_sections(result) if section.charts is not None]
    charts = draw_each(groups, folder)
    try:
        page = write_report_html(result, folder, charts, failures=charts.failures)
    except Exception as exc:  # the charts and the caller's frames stay; the failure is reported
        return ReportFiles(charts, [*charts.failures, f"report.html: {describe(exc)}"])
    return ReportFiles([*charts, page], charts.failures)
