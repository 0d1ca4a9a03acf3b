"""Network link and storage tier frames, and their summary.json sections, from the recorder's raw rows.

Raw rows (see FrameRecorder): `link_info` (index, source, target, tier, bandwidth B/s) once per directed
link; `link_rows` (time, link index, carried B/s from then on; tuples or an (n, 3) array) for links whose
load changed, in time order;
`storage_info` (tier, kind, capacity bytes); `storage_rows` (time, tier, read B/s, write B/s, used bytes),
in time order, the first row of each tier at time 0. Several rows may share a time; the last one for a
link or tier at that time holds. Links carry 0 B/s until their first row.

Frames (columns are part of the metrics contract, documented in README "Outputs"):
- links: link, source, target, tier, bandwidth_Bps, mean_utilization (time-weighted over the run),
  peak_utilization, bytes (carried over the run); one row per link, idle ones included.
- link_timeseries: time_s, link, utilization; piecewise constant per link (a row holds until the link's
  next row), only the busiest links, each with a row at 0 s and a final row at the end time.
- storage_timeseries: time_s, tier, read_Bps, write_Bps, used_bytes; piecewise constant per tier, with a
  final row per tier at the end time.

Everything is vectorised with numpy: a long run with a network produces ~10^6 link rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

LINK_COLUMNS = ["link", "source", "target", "tier", "bandwidth_Bps", "mean_utilization", "peak_utilization",
                "bytes"]
LINK_DTYPES = {"link": "int64", "source": "str", "target": "str", "tier": "str", "bandwidth_Bps": "float64",
               "mean_utilization": "float64", "peak_utilization": "float64", "bytes": "float64"}
LINK_TIMESERIES_DTYPES = {"time_s": "float64", "link": "int64", "utilization": "float64"}
STORAGE_TIMESERIES_DTYPES = {"time_s": "float64", "tier": "str", "read_Bps": "float64", "write_Bps": "float64",
                             "used_bytes": "float64"}
STORAGE_TIER = "storage"  # links into storage tiers: left out of the network's mean and bytes carried

LinkInfo = tuple[int, str, str, str, float]
LinkRow = tuple[float, int, float]
LinkRows = Sequence[LinkRow] | np.ndarray  # tuples, or an (n, 3) float array
StorageInfo = tuple[str, str, float]
StorageRow = tuple[float, str, float, float, float]


# --- links ------------------------------------------------------------------------------------------
class _LinkLevels:
    """Link rows reduced to one per (link, time), sorted by link position then time, cut at the end time.

    `pos` is the link's position in link_info, `time` and `carried` the level from then on, `duration`
    how long it holds (until the link's next row or the end time; 0 for a row at the end time).
    """

    def __init__(self, link_info: Sequence[LinkInfo], link_rows: LinkRows, end_time: float) -> None:
        indexes = np.fromiter((info[0] for info in link_info), dtype=np.int64, count=len(link_info))
        if isinstance(link_rows, np.ndarray):
            rows = link_rows.astype(float, copy=False).reshape(-1, 3)
        else:
            rows = np.fromiter(chain.from_iterable(link_rows), dtype=float, count=3 * len(link_rows))
            rows = rows.reshape(len(link_rows), 3)
        time, carried = rows[:, 0], rows[:, 2]
        pos = _positions(indexes, rows[:, 1].astype(np.int64))
        keep = time <= end_time
        order = np.lexsort((np.arange(len(rows))[keep], time[keep], pos[keep]))  # stable: last row wins
        self.pos, self.time, self.carried = pos[keep][order], time[keep][order], carried[keep][order]
        last = np.ones(len(self.pos), dtype=bool)  # the last row of each (link, time) holds
        last[:-1] = (self.pos[1:] != self.pos[:-1]) | (self.time[1:] != self.time[:-1])
        self.pos, self.time, self.carried = self.pos[last], self.time[last], self.carried[last]
        until = np.full(len(self.pos), float(end_time))  # the link's next row, else the end time
        until[:-1] = np.where(self.pos[1:] == self.pos[:-1], self.time[1:], end_time)
        self.duration = np.maximum(until - self.time, 0.0)


def _positions(indexes: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position in `indexes` (the link_info order) of each link index in `wanted`."""
    order = np.argsort(indexes, kind="stable")
    found = np.searchsorted(indexes[order], wanted)
    found = np.minimum(found, max(len(indexes) - 1, 0))
    if len(wanted) and (not len(indexes) or np.any(indexes[order][found] != wanted)):
        unknown = sorted(set(wanted.tolist()) - set(indexes.tolist()))
        raise ValueError(f"link rows name links missing from link_info: {unknown[:10]}")
    return order[found] if len(wanted) else np.zeros(0, dtype=np.int64)


def links_frame(link_info: Sequence[LinkInfo], link_rows: LinkRows, end_time: float) -> pd.DataFrame:
    """One row per link (idle ones included): bandwidth, time-weighted mean and peak utilization, bytes."""
    return _links(link_info, _LinkLevels(link_info, link_rows, end_time), end_time)


def _links(link_info: Sequence[LinkInfo], levels: _LinkLevels, end_time: float) -> pd.DataFrame:
    n = len(link_info)
    bandwidth = np.fromiter((info[4] for info in link_info), dtype=float, count=n)
    carried_bytes = np.bincount(levels.pos, weights=levels.carried * levels.duration, minlength=n)
    peak = np.zeros(n)
    held = levels.duration > 0
    np.maximum.at(peak, levels.pos[held], levels.carried[held])
    has_bandwidth = bandwidth > 0
    safe = np.where(has_bandwidth, bandwidth, 1.0)
    span = end_time if end_time > 0 else 1.0
    frame = pd.DataFrame({
        "link": np.fromiter((info[0] for info in link_info), dtype=np.int64, count=n),
        "source": [info[1] for info in link_info],
        "target": [info[2] for info in link_info],
        "tier": [info[3] for info in link_info],
        "bandwidth_Bps": bandwidth,
        "mean_utilization": np.where(has_bandwidth, carried_bytes / safe / span, np.nan),
        "peak_utilization": np.where(has_bandwidth, peak / safe, np.nan),
        "bytes": carried_bytes,
    }, columns=LINK_COLUMNS)
    return frame.astype(LINK_DTYPES)


def link_timeseries_frame(link_info: Sequence[LinkInfo], link_rows: LinkRows, end_time: float,
                          top: int = 20) -> pd.DataFrame:
    """Utilization over time of the `top` busiest links (by mean utilization; links never used are left out).

    Rows are changes, sorted by time then link: each link starts with a row at 0 s and ends with a row
    at `end_time` repeating its last level, so a step line covers the whole run.
    """
    levels = _LinkLevels(link_info, link_rows, end_time)
    links = _links(link_info, levels, end_time)
    used = links[links["mean_utilization"].fillna(0.0).to_numpy() > 0]
    ranked = used.assign(_pos=used.index).sort_values(["mean_utilization", "link"], ascending=[False, True],
                                                     kind="stable")
    chosen = ranked["_pos"].to_numpy(dtype=np.int64)[:max(top, 0)]
    if not len(chosen):
        return _empty(LINK_TIMESERIES_DTYPES)
    bandwidth = links["bandwidth_Bps"].to_numpy(dtype=float)
    mask = np.isin(levels.pos, chosen)
    pos, time = levels.pos[mask], levels.time[mask]
    util = levels.carried[mask] / bandwidth[pos]
    first = np.append(True, pos[1:] != pos[:-1])
    previous = np.append(np.nan, util[:-1])
    changed = first | (util != previous)  # a level repeated after rows at one time were merged: drop
    start_pos = pos[first & (time > 0)]  # links whose first change is after 0 s start idle
    last_pos = np.append(pos[1:] != pos[:-1], True)
    end_pos, end_util = pos[last_pos], util[last_pos]
    end_keep = time[last_pos] < end_time
    all_pos = np.concatenate([start_pos, pos[changed], end_pos[end_keep]])
    all_time = np.concatenate([np.zeros(len(start_pos)), time[changed], np.full(int(end_keep.sum()), end_time)])
    all_util = np.concatenate([np.zeros(len(start_pos)), util[changed], end_util[end_keep]])
    order = np.lexsort((all_pos, all_time))
    link_ids = links["link"].to_numpy(dtype=np.int64)
    frame = pd.DataFrame({"time_s": all_time[order], "link": link_ids[all_pos[order]], "utilization": all_util[order]})
    return frame.astype(LINK_TIMESERIES_DTYPES)


def network_summary(links: pd.DataFrame, top: int = 5) -> dict[str, Any]:
    """summary.json "network": link count, mean utilization and bytes over network links (storage tier links
    left out, as their traffic also crosses network links), and the `top` busiest links of any tier."""
    network = links[links["tier"].astype(str) != STORAGE_TIER]
    means = network["mean_utilization"].to_numpy(dtype=float)
    means = means[np.isfinite(means)]
    used = links[links["bytes"].to_numpy(dtype=float) > 0]
    busiest = used.sort_values(["mean_utilization", "peak_utilization", "link"], ascending=[False, False, True],
                               kind="stable").head(max(top, 0))
    return {
        "links": len(links),
        "mean_utilization": float(means.mean()) if means.size else None,
        "busiest": [{"link": int(link), "source": str(source), "target": str(target), "tier": str(tier),
                     "mean_utilization": float(mean), "peak_utilization": float(peak)}
                    for link, source, target, tier, mean, peak in zip(
                        busiest["link"].to_numpy(dtype=np.int64), busiest["source"].astype(str),
                        busiest["target"].astype(str), busiest["tier"].astype(str),
                        busiest["mean_utilization"].to_numpy(dtype=float),
                        busiest["peak_utilization"].to_numpy(dtype=float), strict=True)],
        "bytes_carried": float(network["bytes"].to_numpy(dtype=float).sum()),
    }


# --- storage ----------------------------------------------------------------------------------------
def storage_timeseries_frame(storage_rows: Sequence[StorageRow], end_time: float) -> pd.DataFrame:
    """Per tier read and write rates and used bytes over time, one row per (time, tier) (the last reported
    wins), rows after `end_time` dropped, and a final row per tier at `end_time` repeating its last state."""
    if not storage_rows:
        return _empty(STORAGE_TIMESERIES_DTYPES)
    frame = pd.DataFrame.from_records(list(storage_rows), columns=list(STORAGE_TIMESERIES_DTYPES))
    frame = frame[frame["time_s"].to_numpy(dtype=float) <= end_time]
    frame = frame.drop_duplicates(["time_s", "tier"], keep="last")
    last = frame.drop_duplicates("tier", keep="last")
    final = last[last["time_s"].to_numpy(dtype=float) < end_time].assign(time_s=float(end_time))
    frame = pd.concat([frame, final], ignore_index=True)
    codes, _ = pd.factorize(frame["tier"])  # tiers in order of first appearance
    frame = frame.iloc[np.lexsort((codes, frame["time_s"].to_numpy(dtype=float)))]
    return frame.reset_index(drop=True).astype(STORAGE_TIMESERIES_DTYPES)


def storage_summary(storage_ts: pd.DataFrame, storage_info: Sequence[StorageInfo]) -> dict[str, Any]:
    """summary.json "storage": per tier its kind, capacity, peak and final used bytes, bytes read and
    written over the run (rates integrated over time) and peak read and write rates."""
    codes, names_found = pd.factorize(storage_ts["tier"].astype(str), sort=False)
    time = storage_ts["time_s"].to_numpy(dtype=float)
    order = np.lexsort((time, codes))  # by tier, then time
    codes, time = codes[order], time[order]
    read = storage_ts["read_Bps"].to_numpy(dtype=float)[order]
    write = storage_ts["write_Bps"].to_numpy(dtype=float)[order]
    used = storage_ts["used_bytes"].to_numpy(dtype=float)[order]
    duration = np.zeros(len(time))  # until the tier's next row; its last row holds 0 s
    duration[:-1] = np.where(codes[1:] == codes[:-1], np.diff(time), 0.0)
    info = {name: (kind, capacity) for name, kind, capacity in storage_info}
    found = [str(name) for name in names_found]
    names = list(dict.fromkeys([*info, *found]))
    result: dict[str, Any] = {}
    for name in names:
        kind, capacity = info.get(name, (None, None))
        mine = codes == (found.index(name) if name in found else -2)
        held = mine & (duration > 0)
        result[name] = {
            "kind": kind,
            "capacity_bytes": float(capacity) if capacity is not None else None,
            "peak_used_bytes": float(used[mine].max()) if mine.any() else 0.0,
            "final_used_bytes": float(used[mine][-1]) if mine.any() else 0.0,
            "read_bytes": float(np.dot(read[mine], duration[mine])),
            "written_bytes": float(np.dot(write[mine], duration[mine])),
            "peak_read_Bps": float(read[held].max()) if held.any() else 0.0,
            "peak_write_Bps": float(write[held].max()) if held.any() else 0.0,
        }
    return result


def _empty(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in dtypes}).astype(dtypes)
