"""Collects what the engine reports and turns it into pandas frames with fixed columns.

Frames (columns are part of the metrics contract, documented in README "Outputs"):
- jobs: job_id, name, model, submit_s, start_s, compute_start_s, end_s, wait_s, run_s, jct_s, slowdown,
  accelerators, accelerator_model, nodes, work_ref_s, estimate_ref_s, state, reason, comm_time_s
  (seconds of exposed gradient communication), io_time_s (seconds lost to input streaming and stalled
  checkpoints), comm_share and io_share (those over the computing time), checkpoints (written); then
  the lifecycle (engine/lifecycle.py): preemptions, migrations, attained_service_s (accelerator-seconds
  computing), suspend_s and restore_s (seconds holding accelerators to save and restore checkpoints of
  suspensions), queue_s (every wait summed, up to the end for a job still waiting), lost_work_ref_s,
  tenant, priority; then failures (engine/failures.py): interruptions, lost_service_s (accelerator-seconds
  of computing thrown away), checkpoint_s (seconds writing periodic checkpoints); batch_size (samples per
  accelerator per step; empty: the model's median measured batch). start_s is the first start.
- job_segments: job_id, phase (starting, restoring, computing, suspending), start_s, end_s,
  accelerator_model, accelerators: the phases in which each job held accelerators, in order of end.
- timeseries: time_s, queue_length, allocated_all, busy_all, serving_busy_all, allocated_<model>,
  busy_<model> (counts; busy includes accelerators of serving replicas that are iterating),
  power_accelerators_w, power_hosts_w, power_network_w, power_storage_w, power_it_w, power_facility_w.
  Each row holds from its time until the next row's (piecewise constant); the last row is at the end.
- requests, replicas, replica_timeseries: see metrics/serving_frames.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import pandas as pd

from dcsim.metrics.protocol import ReplicaRecord
from dcsim.metrics.serving_frames import ServiceInfo, replica_timeseries_frame, replicas_frame, requests_frame
from dcsim.model import Job, JobState, Request
from dcsim.model.power import PowerCoefficients

JOB_COLUMNS = [
    "job_id", "name", "model", "submit_s", "start_s", "compute_start_s", "end_s", "wait_s", "run_s", "jct_s",
    "slowdown", "accelerators", "accelerator_model", "nodes", "work_ref_s", "estimate_ref_s", "state", "reason",
    "comm_time_s", "io_time_s", "comm_share", "io_share", "checkpoints",
    "preemptions", "migrations", "attained_service_s", "suspend_s", "restore_s", "queue_s", "lost_work_ref_s",
    "tenant", "priority", "interruptions", "lost_service_s", "checkpoint_s", "batch_size",
]
SEGMENT_COLUMNS = ["job_id", "phase", "start_s", "end_s", "accelerator_model", "accelerators"]

_INT_COLUMNS = {"job_id", "accelerators", "nodes", "checkpoints", "preemptions", "migrations", "priority",
                "interruptions"}
_TEXT_COLUMNS = {"name", "model", "accelerator_model", "state", "reason", "tenant", "phase"}
JOB_DTYPES = {c: "int64" if c in _INT_COLUMNS else "str" if c in _TEXT_COLUMNS else "float64" for c in JOB_COLUMNS}
SEGMENT_DTYPES = {c: "int64" if c in _INT_COLUMNS else "str" if c in _TEXT_COLUMNS else "float64"
                  for c in SEGMENT_COLUMNS}


class FrameRecorder:
    """The Recorder used by runs: keeps job references and level rows, builds frames at the end."""

    def __init__(self, accelerator_models: Sequence[str], power: PowerCoefficients, pue: float) -> None:
        self.power = power
        self.accelerator_models = tuple(accelerator_models)
        self.pue = pue
        self._jobs: list[Job] = []
        self._segments: list[tuple[int, str, float, float, str, int]] = []
        self._times: list[float] = []
        self._rows: list[tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], float,
                               float, float, float, float]] = []
        self.power_adjusted = False  # a power policy reported cap and node adjustments (engine/power.py)
        self._requests: list[Request] = []
        self._replicas: list[ReplicaRecord] = []
        self._replica_rows: list[tuple[float, int, int, int, int, float]] = []
        # Network and storage (empty without a network / storage section); see metrics/network_frames.py.
        self.link_info: list[tuple[int, str, str, str, float]] = []  # index, source, target, tier, B/s
        # Link loads as one chunk per call: (time, link indexes, carried B/s from then on). A long run
        # reports millions of them, so they stay arrays until `link_rows` joins them.
        self._link_chunks: list[tuple[float, np.ndarray, np.ndarray]] = []
        self.storage_info: list[tuple[str, str, float]] = []  # name, kind, capacity bytes
        self.storage_rows: list[tuple[float, str, float, float, float]] = []  # time, tier, read, write, used

    def job_submitted(self, job: Job) -> None:
        self._jobs.append(job)

    def job_rejected(self, job: Job) -> None:
        pass  # the job record already carries state and reason

    def job_started(self, job: Job) -> None:
        pass

    def job_finished(self, job: Job) -> None:
        pass

    def job_segment(self, job: Job, phase: str, start: float, end: float) -> None:
        self._segments.append((job.id, phase, start, end, job.accelerator or "", job.demand))

    def levels(self, time: float, queue_length: int, allocated: Sequence[int], busy: Sequence[int],
               occupied_nodes: Sequence[int], serving_busy: Sequence[int] = (), serving_extra_w: float = 0.0,
               network_w: float = 0.0, storage_w: float = 0.0, capped_w: float = 0.0,
               nodes_adjust_w: float = 0.0) -> None:
        serving = tuple(serving_busy) or (0,) * len(self.accelerator_models)
        row = (queue_length, tuple(allocated), tuple(busy), tuple(occupied_nodes), serving, serving_extra_w,
               network_w, storage_w, capped_w, nodes_adjust_w)
        if self._times and self._times[-1] == time:
            self._rows[-1] = row  # several changes at one instant: the last one holds
        else:
            self._times.append(time)
            self._rows.append(row)

    def network_links(self, links: Sequence[tuple[int, str, str, str, float]]) -> None:
        self.link_info = list(links)

    def link_loads(self, time: float, links: Sequence[int] | np.ndarray, carried: Sequence[float] | np.ndarray) -> None:
        links, carried = np.array(links, dtype=np.int64), np.array(carried, dtype=float)  # copies: kept
        if len(links) != len(carried):
            raise ValueError(f"link_loads: {len(links)} links but {len(carried)} loads")
        self._link_chunks.append((time, links, carried))

    @property
    def link_rows(self) -> np.ndarray:
        """Every link load reported so far, in report order: an (n, 3) float array of time, link index,
        carried B/s from then on (joined anew at each access: read it once)."""
        chunks = self._link_chunks
        if not chunks:
            return np.zeros((0, 3))
        counts = [len(links) for _, links, _ in chunks]
        times = np.repeat(np.fromiter((time for time, _, _ in chunks), dtype=float, count=len(chunks)), counts)
        links = np.concatenate([links for _, links, _ in chunks])
        carried = np.concatenate([carried for _, _, carried in chunks])
        return np.column_stack([times, links.astype(float), carried])

    def storage_tiers(self, tiers: Sequence[tuple[str, str, float]]) -> None:
        self.storage_info = list(tiers)

    def storage_state(self, time: float, tier: str, read_bps: float, write_bps: float, used_bytes: float) -> None:
        self.storage_rows.append((time, tier, read_bps, write_bps, used_bytes))

    def request_submitted(self, request: Request) -> None:
        self._requests.append(request)

    def replica_added(self, replica: ReplicaRecord) -> None:
        self._replicas.append(replica)

    def replica_state(self, time: float, replica: int, batch: int, waiting: int, kv_used: int,
                      power_w: float) -> None:
        self._replica_rows.append((time, replica, batch, waiting, kv_used, power_w))

    # --- frames -------------------------------------------------------------------------------------
    def requests_frame(self, services: Sequence[ServiceInfo]) -> pd.DataFrame:
        return requests_frame(self._requests, services)

    def replicas_frame(self, end_time: float, timeseries: pd.DataFrame | None = None) -> pd.DataFrame:
        """One row per replica; `timeseries`: replica_timeseries_frame() when the caller has built it already."""
        if timeseries is None:
            timeseries = replica_timeseries_frame(self._replica_rows)
        return replicas_frame(self._replicas, timeseries, end_time)

    def replica_timeseries_frame(self) -> pd.DataFrame:
        return replica_timeseries_frame(self._replica_rows)

    def jobs_frame(self) -> pd.DataFrame:
        """One row per job, built column by column (a long replay has 82,000 jobs: a tuple per job through
        DataFrame.from_records took most of this frame's time). numpy's float arithmetic gives the values
        Python's does, and None becomes NaN."""
        jobs = self._jobs
        if not jobs:
            return pd.DataFrame.from_records([], columns=JOB_COLUMNS).astype(JOB_DTYPES)  # fixed types

        def values(name: str) -> list[Any]:
            return list(map(attrgetter(name), jobs))

        def numbers(name: str, dtype: str) -> np.ndarray:  # read at C level; a None (NaN) takes the slower way
            try:
                return np.fromiter(map(attrgetter(name), jobs), dtype=dtype, count=len(jobs))
            except TypeError:
                return np.array(values(name), dtype=dtype)

        def floats(name: str) -> np.ndarray:
            return numbers(name, "float64")

        def ints(name: str) -> np.ndarray:
            return numbers(name, "int64")

        submit, start, compute_start, end = floats("submit"), floats("start"), floats("compute_start"), floats("end")
        wait, run, jct = start - submit, end - start, end - submit
        unfinished = {JobState.QUEUED, JobState.RUNNING, JobState.SUSPENDING}
        states = [state.value if state not in unfinished else "unfinished" for state in values("state")]
        # Shares of the computing time (since start-up ended, until the end or the last progress update).
        span = np.where(np.isnan(end), floats("progress_time"), end) - compute_start
        comm, io = floats("comm_time"), floats("io_time")
        with np.errstate(divide="ignore", invalid="ignore"):
            slowdown = np.where(run > 0, jct / run, np.nan)
            comm_share = np.where(np.isnan(compute_start), np.nan, np.where(span > 0, comm / span, 0.0))
            io_share = np.where(np.isnan(compute_start), np.nan, np.where(span > 0, io / span, 0.0))
        columns = [
            ints("id"), np.array(values("name"), dtype=object), np.array(values("model"), dtype=object), submit,
            start, compute_start, end, wait, run, jct, slowdown, ints("demand"),
            np.array([accelerator or "" for accelerator in values("accelerator")], dtype=object),
            np.fromiter(map(len, values("allocation")), dtype="int64", count=len(jobs)), floats("work"),
            floats("estimate"), np.array(states, dtype=object), np.array(values("reason"), dtype=object), comm, io,
            comm_share, io_share, ints("checkpoints"), ints("preemptions"), ints("migrations"), floats("attained"),
            floats("suspend_time"), floats("restore_time"), floats("queue_time"), floats("lost_work"),
            np.array(values("tenant"), dtype=object), ints("priority"), ints("interruptions"),
            floats("lost_service"), floats("checkpoint_time"), floats("batch_size"),
        ]
        return pd.DataFrame(dict(zip(JOB_COLUMNS, columns, strict=True))).astype(JOB_DTYPES)

    def segments_frame(self) -> pd.DataFrame:
        """One row per job segment, built column by column as jobs_frame (a preemptive Philly replay has
        hundreds of thousands of segments: from_records took most of this frame's time)."""
        segments = self._segments
        if not segments:
            return pd.DataFrame.from_records(segments, columns=SEGMENT_COLUMNS).astype(SEGMENT_DTYPES)
        kinds = (np.int64, object, np.float64, np.float64, object, np.int64)
        data = {name: _field(segments, i, kind)
                for i, (name, kind) in enumerate(zip(SEGMENT_COLUMNS, kinds, strict=True))}
        return pd.DataFrame(data).astype(SEGMENT_DTYPES)

    def timeseries_frame(self, end_time: float) -> pd.DataFrame:
        times = list(self._times)
        rows = list(self._rows)
        if rows and times[-1] < end_time:  # the last levels hold until the end
            times.append(end_time)
            rows.append(rows[-1])
        models = self.accelerator_models
        count = len(rows)

        def per_model(index: int, width: int, dtype: type = np.int64) -> np.ndarray:  # a tuple field, per model or pool
            flat: np.ndarray = np.fromiter(chain.from_iterable(map(itemgetter(index), rows)), dtype=dtype,
                                           count=count * width)
            return flat.reshape(count, width)

        data: dict[str, object] = {"time_s": np.asarray(times, dtype=float), "queue_length": _field(rows, 0, np.int64)}
        allocated, busy, serving = per_model(1, len(models)), per_model(2, len(models)), per_model(4, len(models))
        data["allocated_all"] = allocated.sum(axis=1)
        data["busy_all"] = busy.sum(axis=1)
        data["serving_busy_all"] = serving.sum(axis=1)
        for i, model in enumerate(models):
            data[f"allocated_{model}"] = allocated[:, i]
            data[f"busy_{model}"] = busy[:, i]
        power = self.power
        occupied = per_model(3, len(power.host_delta_w), float)
        # Column by column in a fixed order (not a BLAS product) so results are identical on any machine.
        # Serving replicas draw by batch size (serving_extra_w, above idle); training accelerators a fixed delta.
        accelerator_w = np.full(count, power.accelerators_idle_w)
        for i, delta in enumerate(power.accelerator_delta_w):
            accelerator_w += (busy[:, i] - serving[:, i]) * delta
        accelerator_w += _field(rows, 5, float)
        host_w = np.full(count, power.hosts_idle_w)
        for i, delta in enumerate(power.host_delta_w):
            host_w += occupied[:, i] * delta
        data["power_accelerators_w"] = accelerator_w
        data["power_hosts_w"] = host_w
        if self.power_adjusted:  # caps lower busy draw; powered-off and waking nodes replace their host's
            accelerator_w += _field(rows, 8, float)
            host_w += _field(rows, 9, float)
        network_w = _field(rows, 6, float)
        storage_w = _field(rows, 7, float)
        data["power_network_w"] = network_w
        data["power_storage_w"] = storage_w
        it_w = accelerator_w + host_w + network_w + storage_w
        data["power_it_w"] = it_w
        data["power_facility_w"] = it_w * self.pue
        return pd.DataFrame(data)


def _field(rows: Sequence[tuple[Any, ...]], index: int, dtype: type) -> np.ndarray:
    """One field of every row as a column: numbers read at C level, text as an object array."""
    if dtype is object:
        return np.array(list(map(itemgetter(index), rows)), dtype=object)
    return np.fromiter(map(itemgetter(index), rows), dtype=dtype, count=len(rows))
