"""The interface the engine reports to. The engine imports only this, never a concrete recorder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from dcsim.model import Job, Request


class Recorder(Protocol):
    def job_submitted(self, job: Job) -> None: ...
    def job_rejected(self, job: Job) -> None: ...
    def job_started(self, job: Job) -> None: ...
    def job_finished(self, job: Job) -> None: ...
    def job_segment(self, job: Job, phase: str, start: float, end: float) -> None:
        """A phase the job spent holding accelerators: starting, restoring, computing or suspending."""
        ...

    def levels(
        self, time: float, queue_length: int, allocated: Sequence[int], busy: Sequence[int],
        occupied_nodes: Sequence[int], serving_busy: Sequence[int], serving_extra_w: float,
        network_w: float = 0.0, storage_w: float = 0.0, capped_w: float = 0.0, nodes_adjust_w: float = 0.0,
    ) -> None:
        """Levels that hold from `time` until the next call (piecewise constant): counts per
        accelerator model (allocated, busy, and the busy ones that serve inference), per node pool
        (nodes with any allocation), the serving replicas' power above idle, and the power of the
        network (switches, NICs) and storage."""
        ...

    def network_links(self, links: Sequence[tuple[int, str, str, str, float]]) -> None:
        """Once, before the run: every directed link as (index, source, target, tier, bandwidth B/s)."""
        ...

    def link_loads(self, time: float, links: Sequence[int] | np.ndarray, carried: Sequence[float] | np.ndarray) -> None:
        """Bytes/s carried on these links from `time` on (only links whose load changed)."""
        ...

    def storage_tiers(self, tiers: Sequence[tuple[str, str, float]]) -> None:
        """Once, before the run: every storage tier as (name, kind, capacity bytes, all nodes together)."""
        ...

    def storage_state(self, time: float, tier: str, read_bps: float, write_bps: float, used_bytes: float) -> None:
        """A tier's read and write throughput (bytes/s) and bytes stored, from `time` on."""
        ...

    def request_submitted(self, request: Request) -> None: ...

    def replica_added(self, replica: ReplicaRecord) -> None: ...

    def replica_state(self, time: float, replica: int, batch: int, waiting: int, kv_used: int,
                      power_w: float) -> None:
        """A replica's batch size, queue, KV-cache tokens in use and power, from `time` on."""
        ...


class ReplicaRecord(Protocol):
    """What the recorder reads of a replica when building the replicas frame (at the end)."""

    id: int
    service_name: str
    accelerator: str
    tensor_parallel: int
    node_name: str
    requested: float
    ready: float | None
    stopped: float | None
    kv_capacity: int
    max_batch: int
    completed: int
    output_tokens: int
    busy_time: float
    busy_since: float | None
