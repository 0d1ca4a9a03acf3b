"""Checkpoints of suspensions (preemption) through the storage tier and the network.

With a checkpoint tier in the scenario, a preempted job writes its state from each of its nodes to
the tier as a transfer on the fabric (so it competes with every other job's traffic, and shows on
the tier's write throughput), holding its accelerators until the last byte lands; a resumed job reads
it back the same way after its restart delay. The bytes are the job's checkpoint size (suspension
section or trace), else its parameters x bytes_per_parameter. They are reserved on the tier for the
write and released once written (a suspended job's checkpoint is not counted against capacity while
it waits). A write that does not fit on the tier, or to a tier that has failed, falls back to
costing nothing, as without a tier.
"""

from __future__ import annotations

from collections.abc import Callable

from dcsim.engine.traffic import TrainingTraffic
from dcsim.model import Job


class SuspensionIO:
    def __init__(self, traffic: TrainingTraffic) -> None:
        self.traffic = traffic

    def _bytes(self, job: Job) -> float:
        return job.checkpoint_bytes if job.checkpoint_bytes else self.traffic.profile(job).checkpoint_bytes

    def write(self, job: Job, done: Callable[[], None]) -> bool:
        """Start writing the job's checkpoint; `done` is called when it is written. False: nothing to write."""
        return self._move(job, done, write=True)

    def read(self, job: Job, done: Callable[[], None]) -> bool:
        """Start reading the job's checkpoint back; `done` when read. False: nothing to read."""
        return self._move(job, done, write=False)

    def _move(self, job: Job, done: Callable[[], None], *, write: bool) -> bool:
        traffic = self.traffic
        storage, tier = traffic.storage, traffic.settings.checkpoint_tier
        total = self._bytes(job)
        if storage is None or tier is None or not total > 0 or tier in storage.down:
            return False
        shards = [(node, total * count / job.demand) for node, count in job.allocation]
        if write and storage.reserve(tier, shards) is not None:
            return False
        path = storage.write_path if write else storage.read_path

        def finished() -> None:
            if write:
                storage.release(tier, shards)
            traffic.on_storage_change()
            done()

        traffic.fabric.transfer([path(tier, node) for node, _ in shards], [size for _, size in shards], finished,
                                latency=storage.tiers[tier].latency)
        traffic.on_storage_change()
        return True
