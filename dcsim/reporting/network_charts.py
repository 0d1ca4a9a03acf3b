"""PNG charts of a run's network links and storage tiers, drawn from its saved frames only.

link_utilization.png shows the busiest links of link_timeseries, one small panel each (twenty
overlaid step lines of a busy fabric are unreadable), as utilization over time; storage.png shows
each tier's read and write throughput and its used share of capacity. A run without a network or
storage tiers (frame None or empty) gets no such chart, rather than one saying "no data": most
scenarios have neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dcsim.reporting.charts import MAX_ROWS, binned_levels, model_colors, no_data, time_unit
from dcsim.reporting.drawing import Chart, draw, save
from dcsim.results import RunResult

MAX_LINKS = 8  # one small panel per link; link_timeseries keeps up to 20, the busiest ones are drawn
LEGEND_RIGHT: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 7,
                                "frameon": False}


def write_network_charts(result: RunResult, folder: Path) -> list[Path]:
    """Write link_utilization.png (with a network) and storage.png (with storage tiers) into `folder`.

    Returns only the paths written: [] for a run with neither, so callers need not check.
    """
    return draw(network_charts(result), folder)


def network_charts(result: RunResult) -> list[Chart]:
    """The link and storage charts of `result`, not yet drawn: only those it has frames for."""
    charts: list[Chart] = []
    if result.link_timeseries is not None and not result.link_timeseries.empty:
        charts.append(("link_utilization.png", lambda path: _link_utilization(result, run_end(result), path)))
    if result.storage_timeseries is not None and not result.storage_timeseries.empty:
        charts.append(("storage.png", lambda path: _storage(result, run_end(result), path)))
    return charts


def run_end(result: RunResult) -> float:
    """End of the simulated run: summary sim_time_s, else the last time a network/storage frame mentions."""
    end = result.summary.get("sim_time_s")
    if isinstance(end, int | float) and np.isfinite(end) and end > 0:
        return float(end)
    times = [0.0]
    for frame in (result.link_timeseries, result.storage_timeseries):
        if frame is not None and len(frame):
            times.append(float(frame["time_s"].max()))
    return max(times)


def step_levels(rows: pd.DataFrame, columns: list[str], end: float) -> tuple[np.ndarray, np.ndarray]:
    """Times and values of one series' piecewise-constant rows, held to `end`, binned when long."""
    rows = rows.sort_values("time_s", kind="stable")
    times = rows["time_s"].to_numpy(dtype=float)
    values = rows[columns].to_numpy(dtype=float).reshape(len(rows), len(columns))
    if times[-1] < end:
        times = np.append(times, end)
        values = np.vstack([values, values[-1:]])
    if len(times) > MAX_ROWS and times[-1] > times[0]:
        return binned_levels(times, values)
    return times, values


def link_labels(result: RunResult) -> dict[int, str]:
    """Link id -> "source→target" from the links frame (the id itself when the frame lacks the link)."""
    links = result.links
    if links is None or links.empty:
        return {}
    return {int(link): f"{source}→{target}" for link, source, target in
            zip(links["link"].to_numpy(dtype=np.int64), links["source"].astype(str), links["target"].astype(str),
                strict=True)}


def busiest_links(result: RunResult) -> list[int]:
    """Links of link_timeseries, busiest first: by the links frame's mean utilization, else by the
    time-weighted mean of the timeseries itself; ties by link id."""
    ts = result.link_timeseries
    if ts is None or ts.empty:
        return []
    present = sorted(int(link) for link in ts["link"].unique())
    means: dict[int, float] = {}
    links = result.links
    if links is not None and not links.empty:
        known = links.set_index("link")["mean_utilization"]
        means = {link: float(known[link]) for link in present if link in known.index}
    for link in present:
        if link not in means or not np.isfinite(means[link]):
            rows = ts[ts["link"] == link].sort_values("time_s", kind="stable")
            times = rows["time_s"].to_numpy(dtype=float)
            span = times[-1] - times[0]
            util = rows["utilization"].to_numpy(dtype=float)
            means[link] = float(np.dot(util[:-1], np.diff(times)) / span) if span > 0 else 0.0
    return sorted(present, key=lambda link: (-means[link], link))


def _link_utilization(result: RunResult, end: float, path: Path) -> Path:
    ts = result.link_timeseries
    assert ts is not None
    labels = link_labels(result)
    order = busiest_links(result)
    shown = order[:MAX_LINKS]
    means = _link_means(result)
    scale, unit = time_unit(end)
    fig = Figure(figsize=(11, 1.0 + 1.15 * len(shown)))
    axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    cmap = matplotlib.colormaps["tab10"]
    for i, (ax, link) in enumerate(zip(axes, shown, strict=True)):
        times, values = step_levels(ts[ts["link"] == link], ["utilization"], end)
        ax.fill_between(times / scale, values[:, 0], step="post", color=cmap(i % 10), alpha=0.3, lw=0)
        ax.step(times / scale, values[:, 0], where="post", color=cmap(i % 10), lw=0.9)
        ax.set_ylim(0, 1.05)
        ax.set_yticks([0, 0.5, 1])
        ax.tick_params(labelsize=7)
        mean = f", mean {means[link]:.0%}" if link in means else ""
        ax.set_title(f"{labels.get(link, f'link {link}')}{mean}", loc="left", fontsize=8, pad=2)
        ax.grid(alpha=0.3)
    axes[len(axes) // 2].set_ylabel("utilization (carried / bandwidth)")
    axes[-1].set_xlim(0, end / scale if end > 0 else 1)
    axes[-1].set_xlabel(f"simulated time ({unit})")
    title = f"Network link utilization: the {len(shown)} busiest links" if len(shown) > 1 else \
        "Network link utilization: the busiest link"
    if len(order) > len(shown):
        title += f" (of {len(order)} in link_timeseries)"
    fig.suptitle(title)
    return save(fig, path)


def _link_means(result: RunResult) -> dict[int, float]:
    links = result.links
    if links is None or links.empty:
        return {}
    return {int(link): float(mean) for link, mean in
            zip(links["link"].to_numpy(dtype=np.int64), links["mean_utilization"].to_numpy(dtype=float), strict=True)
            if np.isfinite(mean)}


def tier_capacities(result: RunResult) -> dict[str, float]:
    """Tier -> capacity in bytes from summary.json's `storage` section (positive capacities only)."""
    storage = result.summary.get("storage")
    found: dict[str, float] = {}
    if isinstance(storage, Mapping):
        for tier, info in storage.items():
            capacity = info.get("capacity_bytes") if isinstance(info, Mapping) else None
            if isinstance(capacity, int | float) and np.isfinite(capacity) and capacity > 0:
                found[str(tier)] = float(capacity)
    return found


def _storage(result: RunResult, end: float, path: Path) -> Path:
    ts = result.storage_timeseries
    assert ts is not None
    tiers = list(dict.fromkeys(ts["tier"].astype(str)))
    colors = model_colors(tiers)
    capacities = tier_capacities(result)
    scale, unit = time_unit(end)
    fig = Figure(figsize=(11, 6.5))
    throughput, used = fig.subplots(2, 1, sharex=True)
    for tier in tiers:
        rows = ts[ts["tier"].astype(str) == tier]
        times, values = step_levels(rows, ["read_Bps", "write_Bps", "used_bytes"], end)
        throughput.fill_between(times / scale, values[:, 1] / 1e9, step="post", color=colors[tier], alpha=0.3,
                                lw=0, label=f"{tier} write")
        throughput.step(times / scale, values[:, 1] / 1e9, where="post", color=colors[tier], lw=0.6, alpha=0.6)
        throughput.step(times / scale, values[:, 0] / 1e9, where="post", color=colors[tier], lw=1.6, zorder=3,
                        label=f"{tier} read")
        if tier in capacities:
            used.step(times / scale, values[:, 2] / capacities[tier], where="post", color=colors[tier], lw=1.2,
                      label=tier)
    throughput.set_ylim(bottom=0)
    throughput.set_ylabel("throughput (GB/s)")
    throughput.set_title("Read (line) and write (shaded) throughput per tier", loc="left", fontsize=10)
    throughput.legend(**LEGEND_RIGHT)
    _used_axis(used, bool(used.lines))
    for ax in (throughput, used):
        ax.grid(alpha=0.3)
    used.set_xlim(0, end / scale if end > 0 else 1)
    used.set_xlabel(f"simulated time ({unit})")
    fig.suptitle("Storage tiers")
    return save(fig, path)


def _used_axis(ax: Axes, drawn: bool) -> None:
    if drawn:
        ax.legend(**LEGEND_RIGHT)
    else:
        no_data(ax, "no tier with a known capacity")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("used (fraction of capacity)")
    ax.set_title("Used capacity per tier", loc="left", fontsize=10)
