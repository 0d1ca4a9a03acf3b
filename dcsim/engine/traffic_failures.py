"""What failures do to the traffic of training jobs (engine/failures.py, engine/network_failures.py).

A mixin of TrainingTraffic, apart so that traffic.py keeps to streams and speeds: reopening a job's
streams on new routes when a switch or link fails or comes back, and stalling the jobs that stream
their dataset from a storage tier while it is down.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from dcsim.engine.fabric import Fabric
from dcsim.engine.storage import StorageSystem
from dcsim.errors import ScenarioError
from dcsim.model import Job


class TrafficFailures:
    fabric: Fabric
    storage: StorageSystem | None
    settings: Any  # TrafficSettings (engine/traffic.py imports this module, not the reverse)
    _running: dict[int, Any]  # job id -> _Running
    _open: Callable[[Job], None]
    stopped: Callable[[Job], None]
    _refresh: Callable[[Any], None]
    _drop_stored: Callable[[Any], None]

    def set_tier_down(self, tier: str, down: bool) -> list[int]:
        """A storage tier fails or is repaired: jobs streaming their dataset from it stop or resume
        progress (they keep their accelerators); returns their ids."""
        assert self.storage is not None
        if down:
            self.storage.down.add(tier)
        else:
            self.storage.down.discard(tier)
        touched = [run for run in self._running.values() if run.dataset and self.settings.dataset_tier == tier]
        for run in touched:
            run.starved = down
            run.quiet = None
            self._refresh(run)
        return [run.job.id for run in touched]

    def fabric_jobs(self) -> list[Job]:
        """Jobs with streams on the fabric (those a failed switch may reroute)."""
        return [run.job for run in self._running.values()]

    def reroute(self, job: Job) -> bool:
        """Reopen the job's streams on the current routes (a switch failed or came back); it keeps the
        checkpoints it stored, and one being written is abandoned. False: no route is left."""
        run = self._running.pop(job.id, None)
        if run is None:
            return True
        run.epoch += 1
        self.fabric.close([flow for hop in run.hops for flow in hop] + [flow for flow, _ in run.dataset])
        stored, run.stored = run.stored, deque()
        try:
            self._open(job)
        except ScenarioError:
            self.stopped(job)  # what opened before the missing route
            run.stored = stored
            self._drop_stored(run)
            return False
        if job.id in self._running:
            self._running[job.id].stored = stored
        return True
