"""Charts and the HTML report, drawn from RunResults only (never from the live model).

Keeping reporting on saved results means a reloaded RunResult redraws exactly what `dcsim run` drew.
"""

from __future__ import annotations

from pathlib import Path

from dcsim.reporting.charts import write_run_charts
from dcsim.reporting.comparison import write_comparison_charts
from dcsim.reporting.html import write_report_html
from dcsim.results import RunResult

__all__ = ["write_comparison_charts", "write_report", "write_report_html", "write_run_charts"]


def write_report(result: RunResult, folder: Path) -> list[Path]:
    """Write the run's charts and report.html into the existing `folder`; return every path written."""
    charts = write_run_charts(result, Path(folder))
    return [*charts, write_report_html(result, Path(folder), charts)]
