"""The interface the engine reports to. The engine imports only this, never a concrete recorder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dcsim.model import Job


class Recorder(Protocol):
    def job_submitted(self, job: Job) -> None: ...
    def job_rejected(self, job: Job) -> None: ...
    def job_started(self, job: Job) -> None: ...
    def job_finished(self, job: Job) -> None: ...

    def levels(
        self, time: float, queue_length: int, allocated: Sequence[int], busy: Sequence[int],
        occupied_nodes: Sequence[int],
    ) -> None:
        """Levels that hold from `time` until the next call (piecewise constant): counts per
        accelerator model (allocated, busy) and per node pool (nodes with any allocation)."""
        ...
