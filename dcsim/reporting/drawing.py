"""How every chart is drawn and saved: literal user text, plain log tick labels, one chart at a time.

Charts are listed as (file name, draw function) before any is drawn, so a report can draw each one on
its own and keep going when one fails: the simulation has already run, and a chart bug must not cost
its frames, summary or the other charts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, LogFormatterMathtext

DPI = 110

Chart = tuple[str, Callable[[Path], Path | None]]
"""A chart's file name and the function that draws it to a path (None: nothing to draw after all)."""


@contextmanager
def literal_text() -> Iterator[None]:
    """Draw every string as given, for the figures built and saved inside.

    Service, pool, tier and variant names are user text; matplotlib would read `prod-$US_$EU` as math
    and raise while saving, after the simulation has run. Tick labels are created while saving, so the
    context must cover both building and saving a figure.
    """
    with matplotlib.rc_context({"text.parse_math": False}):
        yield


class PlainLogFormatter(LogFormatter):
    """Log-axis tick labels as plain numbers ("0.01", "100", "1e+06").

    Matplotlib's default log labels are math text ("$10^{2}$"), which literal_text would show raw.
    """

    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return f"{x:g}"


def plain_log_ticks(fig: Figure) -> None:
    """Replace matplotlib's default (math text) log tick labels on every axis of `fig` with plain ones."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for formatter, setter in ((axis.get_major_formatter(), axis.set_major_formatter),
                                      (axis.get_minor_formatter(), axis.set_minor_formatter)):
                if isinstance(formatter, LogFormatterMathtext):
                    base = float(getattr(formatter, "_base", 10.0))
                    setter(PlainLogFormatter(base, labelOnlyBase=formatter.labelOnlyBase,
                                             minor_thresholds=formatter.minor_thresholds))


def save(fig: Figure, path: Path) -> Path:
    """Lay out and write `fig`: the layout comes after plain_log_ticks, so it measures the final labels."""
    plain_log_ticks(fig)
    with literal_text():
        if fig.get_layout_engine() is None:
            fig.tight_layout()
        fig.savefig(path, dpi=DPI)  # Figure objects, not pyplot: no global state, no backend switch
    return path


def draw(charts: Sequence[Chart], folder: Path) -> list[Path]:
    """Draw `charts` into `folder`, stopping at the first failure (draw_each keeps going instead)."""
    paths = []
    for name, drawer in charts:
        with literal_text():
            path = drawer(Path(folder) / name)
        if path is not None:
            paths.append(path)
    return paths


class ChartFiles(list[Path]):
    """The paths written, and `failures`: one line per chart that could not be drawn, such as
    "power.png: KeyError: 'power_it_w'"."""

    def __init__(self, paths: Iterable[Path] = (), failures: Iterable[str] = ()) -> None:
        super().__init__(paths)
        self.failures = list(failures)


def draw_each(groups: Iterable[tuple[str, Callable[[], list[Chart]]]], folder: Path) -> ChartFiles:
    """Draw every chart of every (group name, lister) on its own: a chart or a lister that raises is
    named in `failures`, its half-written file removed, and the others are drawn all the same."""
    written = ChartFiles()
    for group, listed in groups:
        try:
            charts = listed()
        except Exception as exc:  # any chart bug must leave the rest of the output
            written.failures.append(f"{group}: {describe(exc)}")
            continue
        for name, drawer in charts:
            try:
                with literal_text():
                    path = drawer(Path(folder) / name)
            except Exception as exc:
                (Path(folder) / name).unlink(missing_ok=True)
                written.failures.append(f"{name}: {describe(exc)}")
                continue
            if path is not None:
                written.append(path)
    return written


def describe(exc: BaseException, width: int = 200) -> str:
    """One line naming the error: its type and the first non-empty line of its message, shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= width else text[: width - 1] + "…"
