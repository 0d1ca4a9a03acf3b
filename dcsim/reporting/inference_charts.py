"""PNG charts of a run's LLM inference serving, drawn from its saved request and replica frames only.

Latency charts work per service, because services differ in model, load and SLO, and one pooled
line would hide a service that misses its targets. Replica charts show batch size and KV-cache use,
the two levels that explain queueing and preemption. Shared helpers come from charts.py so run,
comparison and inference charts look alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dcsim import units
from dcsim.errors import UnitError
from dcsim.reporting.charts import (
    LEGEND_ABOVE,
    MAX_ROWS,
    binned_levels,
    cdf_plot,
    finite,
    model_colors,
    no_data,
    time_unit,
)
from dcsim.reporting.drawing import Chart, draw, save
from dcsim.results import RunResult

TIME_BINS = 100  # arrival-time bins of the latency and attainment over time charts
MAX_REPLICAS = 16  # more lines than this are unreadable; the first ones by id are drawn
LATENCIES = (("ttft_s", "ttft", "TTFT"), ("tpot_s", "tpot", "TPOT"), ("e2e_s", None, "end-to-end latency"))


def write_inference_charts(result: RunResult, folder: Path) -> list[Path]:
    """Write latency CDF, latency over time, replica batch/KV and SLO attainment PNGs into `folder`.

    Returns [] for a run that served no inference (no requests frame), so callers need not check.
    """
    return draw(inference_charts(result), folder)


def inference_charts(result: RunResult) -> list[Chart]:
    """The inference charts of `result`, not yet drawn; [] for a run that served no inference."""
    if result.requests is None:
        return []
    return [
        ("latency_cdf.png", lambda path: _latency_cdf(*_inputs(result)[:4], path)),
        ("latency_over_time.png", lambda path: _latency_over_time(*_inputs(result), path)),
        ("replica_batch_kv.png", lambda path: _replica_batch_kv(result, run_end(result), path)),
        ("slo_attainment.png", lambda path: _slo_attainment(*_inputs(result), path)),
    ]


def _inputs(result: RunResult) -> tuple[pd.DataFrame, list[str], dict[str, Any], dict[str, dict[str, float]],
                                         float]:
    """Requests, services in order, their colors, SLO targets and the run's end, as the charts take them."""
    assert result.requests is not None
    services = service_order(result)
    return result.requests, services, model_colors(services), slo_targets(result), run_end(result)


# --- inputs -----------------------------------------------------------------------------------------
def service_order(result: RunResult) -> list[str]:
    """Services in scenario order (stable colors across runs), then any others found in the frames."""
    named = [str(s.get("name")) for s in _scenario_services(result) if s.get("name") is not None]
    found: set[str] = set()
    for frame in (result.requests, result.replicas):
        if frame is not None and "service" in frame:
            found |= set(frame["service"].dropna().astype(str))
    return list(dict.fromkeys([*named, *sorted(found - set(named))]))


def slo_targets(result: RunResult) -> dict[str, dict[str, float]]:
    """Service -> {"ttft": seconds, "tpot": seconds}, holding only the targets the scenario sets.

    The resolved scenario holds seconds; a quantity string ("200ms") is parsed too, and an unreadable
    target is left out rather than failing the whole report.
    """
    targets: dict[str, dict[str, float]] = {}
    for service in _scenario_services(result):
        slo = service.get("slo")
        found: dict[str, float] = {}
        for key in ("ttft", "tpot"):
            value = slo.get(key) if isinstance(slo, Mapping) else None
            try:
                seconds = units.parse(value, "duration") if value is not None else np.nan
            except UnitError:
                seconds = np.nan
            if np.isfinite(seconds) and seconds > 0:
                found[key] = seconds
        targets[str(service.get("name"))] = found
    return targets


def run_end(result: RunResult) -> float:
    """End of the simulated run: summary sim_time_s, else the last time any frame mentions."""
    end = result.summary.get("sim_time_s")
    if isinstance(end, int | float) and np.isfinite(end) and end > 0:
        return float(end)
    candidates = [0.0]
    if result.requests is not None and len(result.requests):
        candidates.append(float(np.nanmax(result.requests[["arrival_s", "end_s"]].to_numpy(dtype=float))))
    if result.replica_timeseries is not None and len(result.replica_timeseries):
        candidates.append(float(result.replica_timeseries["time_s"].max()))
    return max(candidates)


def _scenario_services(result: RunResult) -> list[Mapping[str, Any]]:
    workload = result.scenario.get("workload") or {}
    inference = workload.get("inference") if isinstance(workload, Mapping) else None
    services = inference.get("services") if isinstance(inference, Mapping) else None
    return [s for s in services or [] if isinstance(s, Mapping)]


def _of(requests: pd.DataFrame, service: str) -> pd.DataFrame:
    return requests[requests["service"].astype(str) == service]


# --- latency ----------------------------------------------------------------------------------------
def _latency_cdf(requests: pd.DataFrame, services: list[str], colors: dict[str, Any],
                 targets: dict[str, dict[str, float]], path: Path) -> Path:
    fig = Figure(figsize=(13, 4.2))
    axes = fig.subplots(1, 3)
    for ax, (column, slo_key, label) in zip(axes, LATENCIES, strict=True):
        series = {s: finite(_of(requests, s)[column]) for s in services}
        drawn = [s for s in services if series[s].size]
        scale = cdf_plot(ax, {s: series[s] for s in drawn}, label, [colors[s] for s in drawn], noun="requests")
        marks = [(s, targets.get(s, {}).get(slo_key)) for s in services] if slo_key else []
        for service, target in marks:
            if target is not None and drawn:
                _include_x(ax, target / scale)
                ax.axvline(target / scale, color=colors[service], ls="--", lw=1.2, label=f"{service} SLO")
        if drawn and any(t is not None for _, t in marks):
            ax.legend(fontsize=7, loc="lower right")
        ax.set_title(label)
    fig.suptitle("Empirical CDFs of request latency per service (dashed: SLO target)")
    return save(fig, path)


def _latency_over_time(requests: pd.DataFrame, services: list[str], colors: dict[str, Any],
                       targets: dict[str, dict[str, float]], end: float, path: Path) -> Path:
    fig = Figure(figsize=(10, 6.5))
    axes = fig.subplots(2, 1, sharex=True)
    tscale, tunit = time_unit(end)
    for ax, (column, slo_key, label) in zip(axes, LATENCIES[:2], strict=True):
        values = finite(requests[column])
        if not values.size:
            no_data(ax, f"no requests with a {label}")
            ax.set_title(label, loc="left")
            continue
        vscale, vunit = time_unit(float(values.max()))
        for service in services:
            frame = _of(requests, service)
            centers, quantiles = arrival_bins(frame, column, end, lambda g: g.quantile([0.5, 0.99]).unstack())
            if not len(centers):
                continue
            ax.plot(centers / tscale, quantiles[0.5] / vscale, color=colors[service], lw=1.3, marker=".", ms=2,
                    label=f"{service} p50")
            ax.plot(centers / tscale, quantiles[0.99] / vscale, color=colors[service], lw=1.0, ls=":",
                    marker=".", ms=2, label=f"{service} p99")
            target = targets.get(service, {}).get(slo_key)
            if target is not None:
                ax.axhline(target / vscale, color=colors[service], ls="--", lw=1.0, alpha=0.7)
        positive = values[values > 0]
        if positive.size and positive.max() / positive.min() > 100:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_ylabel(f"{label} ({vunit}{', log scale' if ax.get_yscale() == 'log' else ''})")
        ax.set_title(label, loc="left")
        ax.grid(alpha=0.3)
        ax.legend(**{**LEGEND_ABOVE, "ncol": 4})
    axes[-1].set_xlim(0, end / tscale if end > 0 else 1)
    axes[-1].set_xlabel(f"arrival time ({tunit})")
    fig.suptitle(f"Latency by arrival time: p50 and p99 in {TIME_BINS} time bins (dashed: SLO target)")
    return save(fig, path)


def arrival_bins(frame: pd.DataFrame, column: str, end: float,
                 reduce: Callable[[Any], Any]) -> tuple[np.ndarray, Any]:
    """Centers of all TIME_BINS bins of arrival time and `reduce(groupby)` of finite `column` values per bin.

    Bins without a value hold NaN, so a line breaks across a gap instead of bridging it with a slope no
    request had (and a sparse service shows no invented zeros). Empty arrays when no value is finite.
    """
    arrival = frame["arrival_s"].to_numpy(dtype=float)
    values = frame[column].to_numpy(dtype=float)
    keep = np.isfinite(arrival) & np.isfinite(values)
    if not keep.any():
        return np.array([], dtype=float), pd.DataFrame()
    edges = np.linspace(0.0, max(end, float(arrival[keep].max()), 1e-9), TIME_BINS + 1)
    index = np.clip(np.searchsorted(edges, arrival[keep], side="right") - 1, 0, TIME_BINS - 1)
    reduced = reduce(pd.Series(values[keep]).groupby(index))
    return (edges[:-1] + edges[1:]) / 2, reduced.reindex(range(TIME_BINS))


def _include_x(ax: Axes, value: float) -> None:
    """Widen the x axis (cdf_plot fixes log limits) so a mark such as an SLO target stays visible."""
    low, high = ax.get_xlim()
    if value > high or value < low:
        ax.set_xlim(min(low, value / 1.5), max(high, value * 1.2))


# --- replicas ---------------------------------------------------------------------------------------
def _replica_batch_kv(result: RunResult, end: float, path: Path) -> Path:
    fig = Figure(figsize=(11, 6.5))
    axes = fig.subplots(2, 1, sharex=True)
    ts, replicas = result.replica_timeseries, result.replicas
    ids = sorted(int(i) for i in ts["replica_id"].unique()) if ts is not None and len(ts) else []
    shown = ids[:MAX_REPLICAS]
    scale, unit = time_unit(end)
    title = "Replica batch size and KV-cache use"
    if len(ids) > MAX_REPLICAS:
        title += f" (first {MAX_REPLICAS} of {len(ids)} replicas by id)"
    if not shown or ts is None:
        for ax in axes:
            no_data(ax, "no replica timeseries")
    else:
        info = _replica_rows(replicas, shown)
        cmap = matplotlib.colormaps["tab20"]
        for i, replica in enumerate(shown):
            row = info.get(replica, pd.Series(dtype=object))
            times, values = replica_levels(ts[ts["replica_id"] == replica], row, end)
            label = replica_label(replica, row)
            axes[0].step(times / scale, values[:, 0], where="post", color=cmap(i % 20), lw=1.0, label=label)
            axes[1].step(times / scale, values[:, 1], where="post", color=cmap(i % 20), lw=1.0)
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
                       title="replica", title_fontsize=8)
        axes[1].set_ylim(0, 105)
        axes[0].set_ylim(bottom=0)
    axes[0].set_ylabel("requests in batch")
    axes[1].set_ylabel("KV cache used (% of capacity)")
    for ax, name in zip(axes, ("Batch size", "KV-cache use"), strict=True):
        ax.set_title(name, loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    axes[-1].set_xlim(0, end / scale if end > 0 else 1)
    axes[-1].set_xlabel(f"simulated time ({unit})")
    fig.suptitle(title)
    return save(fig, path)


def replica_label(replica: int, row: pd.Series) -> str:
    """"chat/3 (H100 x2)": service, replica id and accelerator x tensor parallelism, as far as `row` (the
    replicas-frame row) tells; a service mixing replica shapes is told apart by the accelerators."""
    service = row.get("service")
    label = f"{service}/{replica}" if isinstance(service, str) and service else str(replica)
    accelerator, parallel = row.get("accelerator"), row.get("tensor_parallel")
    if isinstance(accelerator, str) and accelerator:
        count = f" x{int(parallel)}" if isinstance(parallel, int | float | np.integer) and parallel > 0 else ""
        label += f" ({accelerator}{count})"
    return label


def _replica_rows(replicas: pd.DataFrame | None, ids: Sequence[int]) -> dict[int, pd.Series]:
    """The replicas-frame row of each id in `ids` (first one if repeated); absent ids are left out."""
    if replicas is None or replicas.empty:
        return {}
    wanted = replicas[replicas["replica_id"].isin(ids)].drop_duplicates("replica_id")
    return {int(row["replica_id"]): row for _, row in wanted.iterrows()}


def replica_levels(rows: pd.DataFrame, replica: pd.Series, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Times and (batch, KV %) of one replica, held to its stop (or the run's end), binned when long.

    The last row is repeated at the stop time so a step line shows how long the final level held.
    KV use is NaN when the replica's capacity is unknown or zero rather than a made-up percentage.
    """
    rows = rows.sort_values("time_s", kind="stable")
    times = rows["time_s"].to_numpy(dtype=float)
    capacity = float(replica.get("kv_capacity_tokens", np.nan))
    kv = rows["kv_used_tokens"].to_numpy(dtype=float)
    percent = 100 * kv / capacity if np.isfinite(capacity) and capacity > 0 else np.full(kv.shape, np.nan)
    values = np.column_stack([rows["batch"].to_numpy(dtype=float), percent])
    stopped = float(replica.get("stopped_s", np.nan))
    until = stopped if np.isfinite(stopped) else end
    if until > times[-1]:
        times = np.append(times, until)
        values = np.vstack([values, values[-1:]])
    if len(times) > MAX_ROWS and times[-1] > times[0]:
        return binned_levels(times, values)
    return times, values


# --- SLO attainment ---------------------------------------------------------------------------------
def _slo_attainment(requests: pd.DataFrame, services: list[str], colors: dict[str, Any],
                    targets: dict[str, dict[str, float]], end: float, path: Path) -> Path:
    fig = Figure(figsize=(12, 4.2))
    bars, over_time = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2.2]})
    with_slo = [s for s in services if targets.get(s)]
    if not with_slo:
        for ax in (bars, over_time):
            no_data(ax, "no SLO configured")
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        _attainment_bars(bars, requests, services, colors, targets)
        scale, unit = time_unit(end)
        for service in with_slo:
            centers, means = arrival_bins(_met(requests, service), "slo_met", end, lambda g: g.mean())
            if len(centers):
                over_time.plot(centers / scale, 100 * means.to_numpy(dtype=float), color=colors[service],
                               lw=1.3, marker=".", ms=3, label=service)
        if over_time.lines:
            over_time.legend(**LEGEND_ABOVE)
        else:
            no_data(over_time, "no requests")
        over_time.set_ylim(0, 105)
        over_time.set_xlim(0, end / scale if end > 0 else 1)
        over_time.set_xlabel(f"arrival time ({unit})")
        over_time.set_ylabel("requests meeting SLO (%)")
        over_time.set_title(f"Attainment by arrival time ({TIME_BINS} bins)", loc="left", fontsize=10)
        over_time.grid(alpha=0.3)
    fig.suptitle("SLO attainment: share of requests completed within their TTFT and TPOT targets "
                 "(rejected and unfinished ones miss)")
    return save(fig, path)


def _met(requests: pd.DataFrame, service: str) -> pd.DataFrame:
    """The service's requests with slo_met 0 for those that did not complete, as summary.json counts."""
    own = _of(requests, service)
    return own.assign(slo_met=own["slo_met"].fillna(0.0))


def _attainment_bars(ax: Axes, requests: pd.DataFrame, services: Sequence[str], colors: dict[str, Any],
                     targets: dict[str, dict[str, float]]) -> None:
    """One bar per service with an SLO, labeled with the value and count; services without say so."""
    for x, service in enumerate(services):
        met = _met(requests, service)["slo_met"].to_numpy(dtype=float)
        if not targets.get(service):
            ax.text(x, 2, "no SLO", ha="center", va="bottom", fontsize=8, color="0.4")
        elif not met.size:
            ax.text(x, 2, "no requests", ha="center", va="bottom", fontsize=8, color="0.4")
        else:
            share = 100 * float(met.mean())
            ax.bar(x, share, color=colors[service], width=0.6)
            ax.text(x, share + 1, f"{share:.1f}%\n(n={met.size})", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(services)), list(services), rotation=20 if len(services) > 3 else 0, fontsize=8)
    ax.set_xlim(-0.6, len(services) - 0.4)
    ax.set_ylim(0, 118)  # room for the labels above a 100% bar
    ax.set_ylabel("requests meeting SLO (%)")
    ax.set_title("Per service, whole run", loc="left", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
