"""Charts and the HTML report, drawn from RunResults only (never from the live model).

Keeping reporting on saved results means a reloaded RunResult redraws exactly what `dcsim run` drew.
Inference, network and storage charts are added here rather than inside write_run_charts: their
modules build on the helpers of charts.py, and composing them here keeps that dependency one-way.
"""

from __future__ import annotations

from pathlib import Path

from dcsim.reporting.charts import write_run_charts
from dcsim.reporting.comparison import write_comparison_charts
from dcsim.reporting.html import write_report_html
from dcsim.reporting.inference_charts import write_inference_charts
from dcsim.reporting.network_charts import write_network_charts
from dcsim.results import RunResult

__all__ = ["write_comparison_charts", "write_inference_charts", "write_network_charts", "write_report",
           "write_report_html", "write_run_charts"]


def write_report(result: RunResult, folder: Path) -> list[Path]:
    """Write the run's charts (cluster, training, inference, network and storage) and report.html into the
    existing `folder`.

    Returns every path written, report.html last.
    """
    from dcsim.reporting.sections import present_sections

    folder = Path(folder)
    charts = [path for section in present_sections(result) if section.charts is not None
              for path in section.charts(result, folder)]
    return [*charts, write_report_html(result, folder, charts)]
