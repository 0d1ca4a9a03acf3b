"""Network link and storage tier frames, their summary sections, save/load and charts, from hand-built raw rows.

The engine that produces the raw rows is separate; the rows here follow the recorder's contract (links
carry 0 until their first row, the last row for a link or tier at one time holds) so these tests pin what
the frames compute independently of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dcsim.metrics.network_frames import (
    LINK_COLUMNS,
    LINK_TIMESERIES_DTYPES,
    STORAGE_TIMESERIES_DTYPES,
    link_timeseries_frame,
    links_frame,
    network_summary,
    storage_summary,
    storage_timeseries_frame,
)
from dcsim.metrics.recorder import JOB_COLUMNS, JOB_DTYPES, FrameRecorder
from dcsim.metrics.summary import summarize, training_summary
from dcsim.model.power import PowerCoefficients
from dcsim.reporting import write_network_charts, write_report
from dcsim.results import RunResult

END = 10.0
LINKS = [(0, "node-0", "leaf-0", "host", 10.0), (1, "leaf-0", "node-0", "host", 10.0),
         (2, "leaf-0", "spine-0", "spine", 40.0), (3, "node-0", "fs", "storage", 20.0)]
STORAGE_INFO = [("fs", "parallel_fs", 1000.0), ("bucket", "object_store", 1e6)]


# --- links ------------------------------------------------------------------------------------------
def test_links_frame_hand_computed() -> None:
    rows = [(0.0, 3, 4.0), (2.0, 2, 40.0), (3.0, 2, 0.0), (5.0, 0, 5.0), (5.0, 3, 10.0), (5.0, 3, 0.0)]
    frame = links_frame(LINKS, rows, END)
    assert list(frame.columns) == LINK_COLUMNS
    assert frame["link"].tolist() == [0, 1, 2, 3]  # every link, idle ones included
    by = frame.set_index("link")
    assert by.loc[0, "mean_utilization"] == pytest.approx(0.25)  # 5 of 10 for half the run
    assert by.loc[0, "peak_utilization"] == pytest.approx(0.5)
    assert by.loc[0, "bytes"] == pytest.approx(5.0 * END / 2)
    assert by.loc[1, ["mean_utilization", "peak_utilization", "bytes"]].tolist() == [0.0, 0.0, 0.0]
    assert by.loc[2, "mean_utilization"] == pytest.approx(0.1)  # full for 1 s of 10
    assert by.loc[2, "peak_utilization"] == pytest.approx(1.0)
    assert by.loc[3, "bytes"] == pytest.approx(20.0)  # 4 B/s for 5 s; 10 B/s at 5 s held for no time
    assert by.loc[3, "peak_utilization"] == pytest.approx(0.2)
    assert by.loc[0, ["source", "target", "tier"]].tolist() == ["node-0", "leaf-0", "host"]


def test_links_frame_cuts_at_end_and_maps_sparse_indexes() -> None:
    info = [(7, "a", "b", "core", 100.0), (3, "b", "a", "core", 50.0)]
    rows = [(0.0, 7, 50.0), (4.0, 3, 50.0), (8.0, 7, 100.0), (12.0, 3, 0.0)]
    frame = links_frame(info, rows, 8.0)
    assert frame["link"].tolist() == [7, 3]
    assert frame["mean_utilization"].tolist() == pytest.approx([0.5, 0.5])
    assert frame["peak_utilization"].tolist() == pytest.approx([0.5, 1.0])  # the row at the end holds 0 s
    assert frame["bytes"].tolist() == pytest.approx([400.0, 200.0])


def test_links_frame_matches_a_plain_loop_on_random_rows() -> None:
    rng = np.random.default_rng(5)
    info = [(i, f"s{i}", f"t{i}", "spine", float(rng.uniform(10, 100))) for i in range(6)]
    times = np.round(np.sort(rng.uniform(0, 20, 300)), 1)  # rounding makes ties at one time
    rows = [(float(t), int(rng.integers(0, 6)), float(rng.uniform(0, 10))) for t in times]
    end = 15.0
    frame = links_frame(info, rows, end)
    for index, *_, bandwidth in info:
        level, since, integral, peak = 0.0, 0.0, 0.0, 0.0
        for time, link, carried in rows:
            if link != index or time > end:
                continue
            integral += level * (time - since)
            if time > since:
                peak = max(peak, level)
            level, since = carried, time
        integral += level * (end - since)
        if end > since:
            peak = max(peak, level)
        row = frame[frame["link"] == index].iloc[0]
        assert row["bytes"] == pytest.approx(integral)
        assert row["mean_utilization"] == pytest.approx(integral / bandwidth / end)
        assert row["peak_utilization"] == pytest.approx(peak / bandwidth)


def test_recorder_link_rows_join_its_chunks_in_report_order() -> None:
    """The recorder keeps each report as arrays; joined, they are the rows the frames read, and both
    forms (tuples, the joined array) give the same frame."""
    recorder = FrameRecorder(["H100"], PowerCoefficients(0.0, (0.0,), 0.0, (0.0,)), 1.0)
    assert recorder.link_rows.shape == (0, 3)
    recorder.link_loads(0.0, [3], [4.0])
    recorder.link_loads(2.0, np.array([2]), np.array([40.0]))
    recorder.link_loads(3.0, [], [])
    recorder.link_loads(5.0, np.array([0, 3, 3]), [5.0, 10.0, 0.0])
    rows = [(0.0, 3, 4.0), (2.0, 2, 40.0), (5.0, 0, 5.0), (5.0, 3, 10.0), (5.0, 3, 0.0)]
    assert recorder.link_rows.tolist() == [list(row) for row in rows]
    pd.testing.assert_frame_equal(links_frame(LINKS, recorder.link_rows, END), links_frame(LINKS, rows, END))
    with pytest.raises(ValueError, match="2 links but 1 loads"):
        recorder.link_loads(6.0, [0, 1], [1.0])


def test_links_frame_empty_and_unknown_links() -> None:
    empty = links_frame([], [], END)
    assert list(empty.columns) == LINK_COLUMNS and empty.empty
    assert str(empty["link"].dtype) == "int64" and str(empty["bytes"].dtype) == "float64"
    idle = links_frame(LINKS, [], END)
    assert idle["bytes"].tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="missing from link_info"):
        links_frame(LINKS, [(0.0, 9, 1.0)], END)
    with pytest.raises(ValueError, match="missing from link_info"):
        links_frame([], [(0.0, 0, 1.0)], END)


def test_link_timeseries_keeps_busiest_with_start_and_end_rows() -> None:
    rows = [(0.0, 3, 4.0), (2.0, 2, 40.0), (3.0, 2, 0.0), (5.0, 0, 5.0), (5.0, 3, 10.0), (5.0, 3, 0.0)]
    ts = link_timeseries_frame(LINKS, rows, END, top=2)
    assert dict(ts.dtypes.astype(str)) == LINK_TIMESERIES_DTYPES
    assert sorted(ts["link"].unique().tolist()) == [0, 2]  # means 0.25, 0.1, 0.1 (link 3): ties by id
    assert ts["time_s"].is_monotonic_increasing
    link0 = ts[ts["link"] == 0][["time_s", "utilization"]].to_numpy().tolist()
    assert link0 == [[0.0, 0.0], [5.0, 0.5], [END, 0.5]]
    link2 = ts[ts["link"] == 2][["time_s", "utilization"]].to_numpy().tolist()
    assert link2 == [[0.0, 0.0], [2.0, 1.0], [3.0, 0.0], [END, 0.0]]
    every = link_timeseries_frame(LINKS, rows, END)
    assert sorted(every["link"].unique().tolist()) == [0, 2, 3]  # link 1 never carried anything
    link3 = every[every["link"] == 3][["time_s", "utilization"]].to_numpy().tolist()
    assert link3 == [[0.0, 0.2], [5.0, 0.0], [END, 0.0]]


def test_link_timeseries_empty_has_fixed_dtypes() -> None:
    for ts in (link_timeseries_frame(LINKS, [], END), link_timeseries_frame([], [], END),
               link_timeseries_frame(LINKS, [(0.0, 0, 5.0)], END, top=0)):
        assert ts.empty and dict(ts.dtypes.astype(str)) == LINK_TIMESERIES_DTYPES


def test_network_summary() -> None:
    rows = [(0.0, 3, 4.0), (2.0, 2, 40.0), (3.0, 2, 0.0), (5.0, 0, 5.0), (5.0, 3, 10.0), (5.0, 3, 0.0)]
    summary = network_summary(links_frame(LINKS, rows, END), top=2)
    assert summary["links"] == 4
    assert summary["mean_utilization"] == pytest.approx((0.25 + 0.0 + 0.1) / 3)  # storage link left out
    assert summary["bytes_carried"] == pytest.approx(25.0 + 40.0)
    assert [b["link"] for b in summary["busiest"]] == [0, 2]  # 2 and 3 tie on mean; 2 peaks higher
    assert summary["busiest"][0] == {"link": 0, "source": "node-0", "target": "leaf-0", "tier": "host",
                                     "mean_utilization": 0.25, "peak_utilization": 0.5}
    idle = network_summary(links_frame(LINKS, [], END))
    assert idle["busiest"] == [] and idle["bytes_carried"] == 0.0 and idle["mean_utilization"] == 0.0
    assert network_summary(links_frame([], [], END))["mean_utilization"] is None


# --- storage ----------------------------------------------------------------------------------------
def storage_rows() -> list[tuple[float, str, float, float, float]]:
    return [(0.0, "fs", 0.0, 0.0, 100.0), (0.0, "bucket", 0.0, 0.0, 0.0),
            (2.0, "fs", 10.0, 5.0, 100.0), (4.0, "fs", 99.0, 99.0, 99.0), (4.0, "fs", 0.0, 0.0, 110.0),
            (6.0, "bucket", 0.0, 50.0, 0.0), (8.0, "bucket", 0.0, 0.0, 100.0), (12.0, "fs", 1.0, 1.0, 500.0)]


def test_storage_timeseries_frame() -> None:
    ts = storage_timeseries_frame(storage_rows(), END)
    assert dict(ts.dtypes.astype(str)) == STORAGE_TIMESERIES_DTYPES
    fs = ts[ts["tier"] == "fs"][["time_s", "read_Bps", "write_Bps", "used_bytes"]].to_numpy().tolist()
    assert fs == [[0.0, 0.0, 0.0, 100.0], [2.0, 10.0, 5.0, 100.0], [4.0, 0.0, 0.0, 110.0], [END, 0.0, 0.0, 110.0]]
    assert ts[ts["tier"] == "bucket"]["time_s"].tolist() == [0.0, 6.0, 8.0, END]
    assert ts["time_s"].is_monotonic_increasing
    assert ts[ts["time_s"] == END]["tier"].tolist() == ["fs", "bucket"]  # tiers in order of first appearance
    empty = storage_timeseries_frame([], END)
    assert empty.empty and dict(empty.dtypes.astype(str)) == STORAGE_TIMESERIES_DTYPES


def test_storage_summary() -> None:
    summary = storage_summary(storage_timeseries_frame(storage_rows(), END), STORAGE_INFO)
    assert list(summary) == ["fs", "bucket"]
    assert summary["fs"] == {"kind": "parallel_fs", "capacity_bytes": 1000.0, "peak_used_bytes": 110.0,
                             "final_used_bytes": 110.0, "read_bytes": 20.0, "written_bytes": 10.0,
                             "peak_read_Bps": 10.0, "peak_write_Bps": 5.0}
    assert summary["bucket"]["written_bytes"] == pytest.approx(100.0)
    assert summary["bucket"]["final_used_bytes"] == 100.0
    idle = storage_summary(storage_timeseries_frame([], END), STORAGE_INFO)
    assert idle["bucket"] == {"kind": "object_store", "capacity_bytes": 1e6, "peak_used_bytes": 0.0,
                              "final_used_bytes": 0.0, "read_bytes": 0.0, "written_bytes": 0.0,
                              "peak_read_Bps": 0.0, "peak_write_Bps": 0.0}


# --- training summary: failed jobs, communication and I/O shares --------------------------------------
def test_training_summary_counts_failed_jobs_and_shares() -> None:
    def job(i: int, state: str, comm: float, io: float) -> dict[str, object]:
        computed = state != "rejected"
        return {"job_id": i, "name": f"j{i}", "model": "LM", "submit_s": 0.0, "start_s": 1.0 if computed else np.nan,
                "compute_start_s": 1.0 if computed else np.nan, "end_s": 11.0 if computed else np.nan,
                "wait_s": 1.0 if computed else np.nan, "run_s": 10.0, "jct_s": 11.0, "slowdown": 1.1,
                "accelerators": 8, "accelerator_model": "H100", "nodes": 1, "work_ref_s": 10.0,
                "estimate_ref_s": 10.0, "state": state, "reason": "", "comm_time_s": comm, "io_time_s": io,
                "comm_share": comm / 10 if computed else np.nan, "io_share": io / 10 if computed else np.nan,
                "checkpoints": 0, "preemptions": 0, "migrations": 0, "attained_service_s": 80.0 if computed else 0.0,
                "suspend_s": 0.0, "restore_s": 0.0, "queue_s": 1.0 if computed else 11.0, "lost_work_ref_s": 0.0,
                "tenant": "", "priority": 0, "interruptions": 0, "lost_service_s": 0.0, "checkpoint_s": 0.0}
    jobs = pd.DataFrame([job(0, "completed", 1.0, 0.0), job(1, "failed", 3.0, 2.0), job(2, "rejected", 0.0, 0.0)],
                        columns=JOB_COLUMNS).astype(JOB_DTYPES)
    ts = pd.DataFrame({"time_s": [0.0, 11.0], "queue_length": [0, 0], "allocated_all": [0, 0], "busy_all": [0, 0],
                       "allocated_H100": [0, 0], "busy_H100": [0, 0], "power_accelerators_w": [3.6e6, 0.0],
                       "power_hosts_w": [0.0, 0.0], "power_network_w": [3.6e5, 0.0], "power_storage_w": [7.2e5, 0.0],
                       "power_it_w": [4.68e6, 0.0], "power_facility_w": [4.68e6, 0.0]})
    summary = summarize(scenario_name="t", seed=0, version="0", sim_time=11.0, wall_time=0.0,
                        timeseries=ts, capacity={"H100": 8}, pue=1.0, carbon_intensity=0.0, events=0)
    training = training_summary(jobs, 3)
    assert (training["jobs_completed"], training["jobs_failed"], training["jobs_rejected"]) == (1, 1, 1)
    assert training["comm_share"]["mean"] == pytest.approx(0.2)  # over the two jobs that computed
    assert training["comm_share"]["max"] == pytest.approx(0.3)
    assert training["io_share"]["p50"] == pytest.approx(0.1)
    by_component = summary["energy"]["by_component_kwh"]
    assert by_component["network"] == pytest.approx(1.1) and by_component["storage"] == pytest.approx(2.2)


# --- results and charts -------------------------------------------------------------------------------
def hand_result(network: bool = True, storage: bool = True) -> RunResult:
    rows = [(0.0, 3, 4.0), (2.0, 2, 40.0), (3.0, 2, 0.0), (5.0, 0, 5.0), (5.0, 3, 10.0), (5.0, 3, 0.0)]
    jobs = pd.DataFrame(columns=JOB_COLUMNS).astype(JOB_DTYPES)
    ts = pd.DataFrame({"time_s": [0.0, END], "queue_length": [0, 0], "allocated_all": [0, 0], "busy_all": [0, 0],
                       "serving_busy_all": [0, 0], "allocated_H100": [0, 0], "busy_H100": [0, 0],
                       "power_accelerators_w": [100.0, 100.0], "power_hosts_w": [50.0, 50.0],
                       "power_network_w": [20.0, 20.0], "power_storage_w": [10.0, 10.0],
                       "power_it_w": [180.0, 180.0], "power_facility_w": [180.0, 180.0]})
    summary: dict[str, object] = {"scenario": "net", "seed": 1, "dcsim_version": "0", "sim_time_s": END,
                                  "cluster": {"accelerators": {"H100": 8}},
                                  "utilization": {"allocated": {"all": 0.0}, "busy": {"all": 0.0}},
                                  "energy": {"by_component_kwh": {"accelerators": 1.0, "hosts": 0.5,
                                                                  "network": 0.25, "storage": 0.125}}}
    frames: dict[str, pd.DataFrame] = {}
    if network:
        frames["links"] = links_frame(LINKS, rows, END)
        frames["link_timeseries"] = link_timeseries_frame(LINKS, rows, END)
        summary["network"] = network_summary(frames["links"])
    if storage:
        frames["storage_timeseries"] = storage_timeseries_frame(storage_rows(), END)
        summary["storage"] = storage_summary(frames["storage_timeseries"], STORAGE_INFO)
    return RunResult(scenario={"name": "net"}, seed=1, version="0", summary=summary, jobs=jobs, timeseries=ts,
                     **frames)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    result = hand_result()
    folder = result.save(tmp_path / "run")
    for name in ("links", "link_timeseries", "storage_timeseries"):
        assert (folder / f"{name}.csv").is_file() and (folder / "frames" / f"{name}.parquet").is_file()
    loaded = RunResult.load(folder)
    for name in ("links", "link_timeseries", "storage_timeseries"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(result, name))
    assert loaded.summary["network"] == result.summary["network"]


def test_load_without_network_or_storage(tmp_path: Path) -> None:
    loaded = RunResult.load(hand_result(network=False, storage=False).save(tmp_path / "run"))
    assert loaded.links is None and loaded.link_timeseries is None and loaded.storage_timeseries is None
    assert set(loaded.frames) == {"jobs", "timeseries"}
    only_storage = RunResult.load(hand_result(network=False).save(tmp_path / "storage"))
    assert only_storage.links is None and only_storage.storage_timeseries is not None


def is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0 and path.read_bytes().startswith(b"\x89PNG")


def test_network_charts_written(tmp_path: Path) -> None:
    paths = write_network_charts(hand_result(), tmp_path)
    assert [p.name for p in paths] == ["link_utilization.png", "storage.png"]
    assert all(is_png(p) for p in paths)
    assert write_network_charts(hand_result(network=False, storage=False), tmp_path / "none") == []
    only_links = write_network_charts(hand_result(storage=False), tmp_path)
    assert [p.name for p in only_links] == ["link_utilization.png"]


def test_network_charts_without_links_frame_or_capacity(tmp_path: Path) -> None:
    result = hand_result()
    result.links = None  # labels and order fall back to the timeseries itself
    result.summary["storage"] = {}  # no capacity known: the used panel says so
    paths = write_network_charts(result, tmp_path)
    assert all(is_png(p) for p in paths) and len(paths) == 2


def test_long_link_timeseries_is_binned(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 1000, 30_000))
    rows = [(float(t), int(i), float(c)) for t, i, c in zip(times, rng.integers(0, 3, times.size),
                                                             rng.uniform(0, 10, times.size), strict=True)]
    result = hand_result(storage=False)
    result.link_timeseries = link_timeseries_frame(LINKS, rows, 1000.0)
    result.summary["sim_time_s"] = 1000.0
    assert all(is_png(p) for p in write_network_charts(result, tmp_path))


def test_report_shows_network_and_storage(tmp_path: Path) -> None:
    paths = write_report(hand_result(), tmp_path)
    assert {"link_utilization.png", "storage.png"} <= {p.name for p in paths}
    page = paths[-1].read_text()
    assert "<h2>Network and storage</h2>" in page
    assert "node-0 → leaf-0" in page and "parallel_fs" in page
    assert "0.25 kWh" in page and "0.125 kWh" in page
    (tmp_path / "plain").mkdir()
    plain = write_report(hand_result(network=False, storage=False), tmp_path / "plain")
    assert "Network and storage" not in plain[-1].read_text()
