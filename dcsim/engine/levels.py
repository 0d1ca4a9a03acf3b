"""Cluster levels shared by the training and serving engines, reported to the recorder on change.

Both engines take accelerators from one cluster, so the busy counts and the power of serving
replicas (which depends on their batch) are kept in one place and reported as one row per change.
"""

from __future__ import annotations

from collections.abc import Callable

from dcsim.metrics.protocol import Recorder
from dcsim.model import Cluster


class LevelBoard:
    def __init__(self, cluster: Cluster, recorder: Recorder) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.training_queue = 0
        self.training_busy: dict[str, int] = dict.fromkeys(cluster.accelerator_models, 0)
        self.serving_busy: dict[str, int] = dict.fromkeys(cluster.accelerator_models, 0)
        self.serving_extra_w = 0.0  # serving replicas' draw above their accelerators' idle power
        self.network_w = 0.0  # switches and NICs (engine/meters.py)
        self.storage_w = 0.0
        self.last_time = 0.0  # of the last change reported: where a run without a horizon ends
        # Power policies (engine/power.py): a hook that settles caps before each row, and the watts its
        # caps and powered-off nodes take off (negative) the linear power model's accelerators and hosts.
        self.before_emit: Callable[[float], None] | None = None
        self.capped_w = 0.0
        self.nodes_adjust_w = 0.0

    def emit(self, now: float) -> None:
        self.last_time = now
        if self.before_emit is not None:
            self.before_emit(now)
        cluster = self.cluster
        models = cluster.accelerator_models
        serving_busy, training_busy = self.serving_busy, self.training_busy
        if len(models) == 1 and len(cluster.pools) == 1:  # one model, one pool (Philly): no list building
            m = models[0]
            serving_m = serving_busy[m]
            self.recorder.levels(now, self.training_queue, (cluster.capacity[m] - cluster.free[m] - cluster.down[m],),
                                 (training_busy[m] + serving_m,), (cluster.occupied_nodes[cluster.pools[0]],),
                                 (serving_m,), self.serving_extra_w, self.network_w, self.storage_w, self.capped_w,
                                 self.nodes_adjust_w)
            return
        capacity, free, down = cluster.capacity, cluster.free, cluster.down
        allocated = tuple([capacity[m] - free[m] - down[m] for m in models])  # not under repair
        serving = tuple([serving_busy[m] for m in models])
        busy = tuple([training_busy[m] + serving_busy[m] for m in models])
        occupied = tuple([cluster.occupied_nodes[p] for p in cluster.pools])
        self.recorder.levels(now, self.training_queue, allocated, busy, occupied, serving, self.serving_extra_w,
                             self.network_w, self.storage_w, self.capped_w, self.nodes_adjust_w)
