"""Charts and the HTML report, drawn from RunResults only (never from the live model).

Keeping reporting on saved results means a reloaded RunResult redraws exactly what `dcsim run` drew.
Inference, network and storage charts are added here rather than inside write_run_charts: their
modules build on the helpers of charts.py, and composing them here keeps that dependency one-way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape  # not `import html`: the package's html module would shadow it
from pathlib import Path

from dcsim.reporting.charts import Chart, chart_notes, literal_text, run_charts, write_run_charts
from dcsim.reporting.comparison import write_comparison_charts
from dcsim.reporting.html import write_report_html
from dcsim.reporting.inference_charts import inference_charts, write_inference_charts
from dcsim.reporting.network_charts import network_charts, write_network_charts
from dcsim.results import RunResult

__all__ = ["ReportFiles", "chart_notes", "write_comparison_charts", "write_inference_charts", "write_network_charts",
           "write_report", "write_report_html", "write_run_charts"]

CHART_GROUPS: tuple[tuple[str, Callable[[RunResult], list[Chart]]], ...] = (
    ("cluster and training charts", run_charts), ("inference charts", inference_charts),
    ("network and storage charts", network_charts))


class ReportFiles(list[Path]):
    """The paths write_report wrote, report.html last, and `failures`: one line per chart (or the page)
    that could not be drawn, such as "power.png: KeyError: 'power_it_w'"."""

    def __init__(self, paths: Iterable[Path], failures: Iterable[str]) -> None:
        super().__init__(paths)
        self.failures = list(failures)


def write_report(result: RunResult, folder: Path) -> ReportFiles:
    """Write the run's charts (cluster, training, inference, network and storage) and report.html into the
    existing `folder`, drawing each chart on its own.

    A chart that raises is left out and named in `failures` (and on the page) rather than stopping the
    report: the simulation has already run, and its frames and summary must not be lost to a chart.
    """
    folder = Path(folder)
    charts: list[Path] = []
    failures: list[str] = []
    for group, listed in CHART_GROUPS:
        try:
            planned = listed(result)
        except Exception as exc:  # any chart bug must leave the rest of the report
            failures.append(f"{group}: {describe(exc)}")
            continue
        for name, drawer in planned:
            try:
                with literal_text():
                    path = drawer(folder / name)
            except Exception as exc:
                (folder / name).unlink(missing_ok=True)  # no half-written image
                failures.append(f"{name}: {describe(exc)}")
                continue
            if path is not None:
                charts.append(path)
    try:
        page = write_report_html(result, folder, charts)
    except Exception as exc:
        return ReportFiles(charts, [*failures, f"report.html: {describe(exc)}"])
    if failures:
        _list_failures(page, failures)
    return ReportFiles([*charts, page], failures)


def describe(exc: BaseException, width: int = 200) -> str:
    """One line naming the error: its type and the first non-empty line of its message, shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= width else text[: width - 1] + "…"


def _list_failures(page: Path, failures: list[str]) -> None:
    """Add a warning that lists the charts that failed, before the charts section (or at the end)."""
    items = "".join(f"<li>{escape(line)}</li>" for line in failures)
    warning = (f'<div class="warn"><b>{len(failures)} chart{"s" if len(failures) > 1 else ""} could not be '
               f"drawn</b> (the frames and summary are complete):<ul>{items}</ul></div>")
    text = page.read_text(encoding="utf-8")
    anchor = "<h2>Charts</h2>" if "<h2>Charts</h2>" in text else "</body>"
    page.write_text(text.replace(anchor, warning + anchor, 1), encoding="utf-8")
