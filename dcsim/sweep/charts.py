"""Sweep charts: a metric against one parameter with 95% CI bands (one line per value of a second),
a heatmap of a metric over two parameters, and the Pareto front of two metrics.

Values are averaged over seeds and over any other parameter, the CI computed from all those runs;
the caption says which parameters were averaged over. Charts are listed (name, drawer) before any is
drawn, as in reporting/drawing.py, so one failing chart costs only itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dcsim.reporting.drawing import Chart, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
from dcsim.stats import mean_ci
from dcsim.sweep.tables import HIGHER_IS_BETTER, pareto_mask


def chart_list(runs: pd.DataFrame, params: Sequence[str], metrics: Sequence[str],
               pareto: tuple[str, str] | None) -> list[Chart]:
    """The charts this sweep can draw: lines and heatmaps need a parameter with two or more values."""
    ok = runs[runs["status"] == "ok"]
    varied = [p for p in params if ok[p].nunique(dropna=False) > 1] if len(ok) else []
    charts: list[Chart] = []
    if varied:
        x, series = varied[0], (varied[1] if len(varied) > 1 else None)
        for metric in metrics:
            charts.append((f"charts/{metric}_vs_{_safe(x)}.png", partial(_line, ok, x, series, metric)))
            if series is not None:
                charts.append((f"charts/{metric}_heatmap.png", partial(_heatmap, ok, x, series, metric)))
    if pareto is not None and {*pareto} <= set(ok.columns) and "point" in ok:
        charts.append((f"charts/pareto_{pareto[0]}_{pareto[1]}.png", lambda path: _pareto(ok, pareto, params, path)))
    return charts


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _order(values: pd.Series) -> tuple[list[object], bool]:
    """Distinct values in axis order, and whether they are numbers (plotted at their value)."""
    distinct = list(pd.unique(values))
    numeric = all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in distinct)
    return (sorted(distinct) if numeric else distinct), numeric


def _figure(width: float = 7.0, height: float = 4.2) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def _line(runs: pd.DataFrame, x: str, series: str | None, metric: str, path: Path) -> Path:
    fig, ax = _figure()
    xs, numeric = _order(runs[x])
    groups = _order(runs[series])[0] if series else [None]
    for group in groups:
        subset = runs if series is None else runs[runs[series] == group]
        stats = [mean_ci(subset.loc[subset[x] == value, metric].to_numpy(dtype=float)) for value in xs]
        means = np.array([s[0] for s in stats])
        halves = np.nan_to_num(np.array([s[1] for s in stats]))
        positions = np.array(xs, dtype=float) if numeric else np.arange(len(xs), dtype=float)
        label = None if series is None else f"{series}={group}"
        ax.plot(positions, means, marker="o", label=label)
        ax.fill_between(positions, means - halves, means + halves, alpha=0.2)
    if not numeric:
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean and 95% CI over seeds")
    if series is not None:
        ax.legend(fontsize="small")
    return save(fig, path)


def _heatmap(runs: pd.DataFrame, x: str, y: str, metric: str, path: Path) -> Path:
    fig, ax = _figure()
    xs, ys = _order(runs[x])[0], _order(runs[y])[0]
    grid = np.full((len(ys), len(xs)), np.nan)
    for i, y_value in enumerate(ys):
        for j, x_value in enumerate(xs):
            cells = runs.loc[(runs[x] == x_value) & (runs[y] == y_value), metric].to_numpy(dtype=float)
            grid[i, j] = np.nanmean(cells) if np.isfinite(cells).any() else np.nan
    image = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis")
    middle = (np.nanmin(grid) + np.nanmax(grid)) / 2 if np.isfinite(grid).any() else 0.0
    for i in range(len(ys)):
        for j in range(len(xs)):
            if np.isfinite(grid[i, j]):  # dark text on viridis' bright upper half
                ax.text(j, i, f"{grid[i, j]:.4g}", ha="center", va="center", fontsize=8,
                        color="k" if grid[i, j] > middle else "w")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{metric}: mean over seeds")
    fig.colorbar(image, ax=ax)
    return save(fig, path)


def _pareto(runs: pd.DataFrame, metrics: tuple[str, str], params: Sequence[str], path: Path) -> Path:
    x, y = metrics
    means = runs.groupby("point")[[x, y]].mean()
    front = pareto_mask(means[x].to_numpy(), means[y].to_numpy(), x in HIGHER_IS_BETTER, y in HIGHER_IS_BETTER)
    fig, ax = _figure()
    ax.scatter(means[x], means[y], color="0.6", label="points")
    best = means[front].sort_values(x)
    ax.plot(best[x], best[y], marker="o", color="C3", label="Pareto front")
    labels = runs.drop_duplicates("point").set_index("point")
    for point, row in best.iterrows():
        text = ", ".join(f"{labels.at[point, p]!s}" for p in params)  # values only: the title names them
        ax.annotate(text, (row[x], row[y]), fontsize=7, xytext=(4, 4), textcoords="offset points",
                    annotation_clip=True)
    better = {True: "higher is better", False: "lower is better"}
    ax.set_xlabel(f"{x} ({better[x in HIGHER_IS_BETTER]})")
    ax.set_ylabel(f"{y} ({better[y in HIGHER_IS_BETTER]})")
    ax.set_title(f"Pareto front of the sweep's points (means over seeds)\nlabels: {', '.join(params)}",
                 fontsize=9)
    ax.legend(fontsize="small")
    return save(fig, path)
