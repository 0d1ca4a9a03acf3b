"""What the training engine calls out to, as Protocols: periodic checkpoints, checkpoint transfers of
suspensions, and network/storage traffic. Their implementations live in their own modules
(engine/checkpoints.py, engine/suspension_io.py, engine/traffic.py), which the engine never imports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from dcsim.model import Job


class JobCheckpoints(Protocol):
    """Periodic checkpoints of computing jobs (engine/checkpoints.py)."""

    def started(self, job: Job) -> None: ...


class CheckpointTransfers(Protocol):
    """Checkpoints of suspensions through the storage tier (engine/suspension_io.py)."""

    def write(self, job: Job, done: Callable[[], None]) -> bool: ...
    def read(self, job: Job, done: Callable[[], None]) -> bool: ...


class JobTraffic(Protocol):
    """Network and storage traffic of running jobs (engine/traffic.py): it sets their speed through
    update_rate and may fail them."""

    def started(self, job: Job) -> None: ...
    def stopped(self, job: Job) -> None: ...
