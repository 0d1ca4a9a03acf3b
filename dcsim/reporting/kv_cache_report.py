"""Report section of paged KV and prefix caching: hit rates, prefill work saved, swaps, and a chart of
hit rate by arrival time and per-replica cache occupancy. Empty for runs without `paged_kv`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from dcsim.reporting.charts import model_colors, no_data, time_unit
from dcsim.reporting.drawing import Chart, save
from dcsim.reporting.format import esc, number, percent, table
from dcsim.reporting.inference_charts import MAX_REPLICAS, arrival_bins, run_end, service_order
from dcsim.results import RunResult

KV_CAPTIONS = {
    "prefix_cache": "Prefix-cache token hit rate of requests binned by arrival time, per service (cached / "
                    "requested prefill tokens), and each replica's KV blocks held by running requests plus "
                    "cached prefixes, as a share of its capacity.",
}
_ROWS = (("token hit rate", "token_hit_rate", percent), ("request hit rate", "request_hit_rate", percent),
         ("prefill tokens requested", "prefill_tokens_requested", number),
         ("prefill tokens cached", "prefill_tokens_cached", number),
         ("prefill tokens computed", "prefill_tokens_computed", number),
         ("swaps out / in", None, None), ("swap time (s)", "swap_s", number), ("evictions", "evictions", number),
         ("blocks read from the host tier", "host_tier_blocks_read", number),
         ("peak occupancy", "peak_occupancy", percent))
_OPTIONAL_ROWS = (("swaps recomputed (swap space full)", "swaps_refused", number),  # only with swap_space
                  ("blocks read from the shared store", "store_blocks_read", number),  # only with a store
                  ("entries written to the shared store", "store_entries_written", number))


def kv_cache_tables(s: Mapping[str, Any]) -> str:
    inference = s.get("inference")
    kv = inference.get("kv_cache") if isinstance(inference, Mapping) else None
    if not isinstance(kv, Mapping):
        return ""
    found = kv.get("services")
    services: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    names = list(services) if len(services) > 1 else []
    rows = []
    for label, key, show in (*_ROWS, *((label, key, show) for label, key, show in _OPTIONAL_ROWS if key in kv)):
        cells = [kv, *(services[name] for name in names)]
        if key is None:
            rows.append([esc(label), *(esc(f"{number(c.get('swaps_out'))} / {number(c.get('swaps_in'))}")
                                       for c in cells)])
        else:
            assert show is not None
            rows.append([esc(label), *(esc(show(c.get(key))) for c in cells)])
    return f"<h2>KV cache and prefix caching</h2>{table(['', 'all services', *map(esc, names)], rows)}"


def kv_cache_charts(result: RunResult) -> list[Chart]:
    if result.request_kv is None or result.requests is None:
        return []
    return [("prefix_cache.png", lambda path: _prefix_cache(result, path))]


def _prefix_cache(result: RunResult, path: Path) -> Path:
    fig = Figure(figsize=(11, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True)
    end = run_end(result)
    scale, unit = time_unit(end)
    requests = result.requests
    kv = result.request_kv
    assert requests is not None and kv is not None
    joined = kv.merge(requests[["request_id", "arrival_s"]], on="request_id")
    services = [name for name in service_order(result) if name in set(joined["service"])]
    colors = model_colors(services)
    drawn = False
    for name in services:
        own = joined[joined["service"] == name]
        centers, sums = arrival_bins(own, "prefill_cached", end, lambda g: g.sum())
        _, requested = arrival_bins(own, "prefill_requested", end, lambda g: g.sum())
        if len(centers):
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = 100 * np.asarray(sums, dtype=float) / np.asarray(requested, dtype=float)
            top.plot(centers / scale, rate, color=colors[name], lw=1.2, label=name)
            drawn = True
    if drawn:
        top.legend(loc="upper left", fontsize=8, frameon=False)
        top.set_ylim(0, 100)
    else:
        no_data(top, "no prefill")
    occupancy = result.replica_kv
    ids = sorted(int(i) for i in occupancy["replica_id"].unique()) if occupancy is not None and len(occupancy) else []
    if occupancy is None or not ids:
        no_data(bottom, "no replica samples")
    else:
        cmap = matplotlib.colormaps["tab20"]
        for i, replica in enumerate(ids[:MAX_REPLICAS]):
            rows = occupancy[occupancy["replica_id"] == replica]
            share = 100 * (rows["used_blocks"] + rows["cached_blocks"]) / rows["capacity_blocks"]
            times = np.append(rows["time_s"].to_numpy(dtype=float), end)
            bottom.step(times / scale, np.append(share.to_numpy(dtype=float), share.iloc[-1]), where="post",
                        color=cmap(i % 20), lw=1.0, label=str(replica))
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, title="replica",
                      title_fontsize=8)
        bottom.set_ylim(0, 105)
    top.set_ylabel("token hit rate (%)")
    bottom.set_ylabel("KV blocks in use + cached (%)")
    for ax, name in zip((top, bottom), ("Prefix-cache hit rate by arrival time", "Cache occupancy per replica"),
                        strict=True):
        ax.set_title(name, loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    bottom.set_xlim(0, end / scale if end > 0 else 1)
    bottom.set_xlabel(f"simulated time ({unit})")
    title = "Prefix caching"
    if len(ids) > MAX_REPLICAS:
        title += f" (first {MAX_REPLICAS} of {len(ids)} replicas by id)"
    fig.suptitle(title)
    return save(fig, path)



