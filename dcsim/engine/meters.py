"""Network and storage power and storage throughput, re-read after every change of flows or capacity.

Network power = a fixed part (switches, their ports in use, host NICs) + energy per bit x the bits
crossing network links per second (each link traversed counts, as each switch hop spends energy).
Storage power = watts per TB of capacity + energy per bit x bytes read and written per second.
Both are piecewise constant between changes, so the timeseries integrates them exactly.
"""

from __future__ import annotations

import numpy as np

from dcsim.engine.fabric import Fabric
from dcsim.engine.levels import LevelBoard
from dcsim.engine.storage import StorageSystem
from dcsim.metrics.protocol import Recorder

BITS_PER_BYTE_PJ = 8e-12  # joules per (byte x pJ/bit)


class FabricMeter:
    def __init__(self, fabric: Fabric, storage: StorageSystem | None, levels: LevelBoard, recorder: Recorder, *,
                 network_links: int, network_fixed_w: float, network_pj_per_bit: float) -> None:
        self.fabric = fabric
        self.storage = storage
        self.levels = levels
        self.recorder = recorder
        self.network_links = network_links
        self.network_fixed_w = network_fixed_w
        self.network_pj_per_bit = network_pj_per_bit
        self._last: dict[str, tuple[float, float, float]] = {}
        tiers = storage.tiers.values() if storage is not None else ()
        self._read = {t.name: np.asarray(t.read_links, dtype=np.int64) for t in tiers}
        self._write = {t.name: np.asarray(t.write_links, dtype=np.int64) for t in tiers}

    def start(self) -> None:
        """Levels and tier states at time 0, before any flow."""
        if self.storage is not None:
            self.recorder.storage_tiers([(t.name, t.kind, t.total_capacity) for t in self.storage.tiers.values()])
        self.update(emit=False)

    def update(self, emit: bool = True) -> None:
        now = self.fabric.env.now
        carried = self.fabric.used
        network_w = self.network_fixed_w
        if self.network_pj_per_bit and self.network_links:
            traffic = float(np.maximum(carried[:self.network_links], 0.0).sum())
            network_w += self.network_pj_per_bit * BITS_PER_BYTE_PJ * traffic
        storage_w = 0.0
        for tier in self.storage.tiers.values() if self.storage is not None else ():
            read = float(np.maximum(carried[self._read[tier.name]], 0.0).sum())
            write = float(np.maximum(carried[self._write[tier.name]], 0.0).sum())
            used = float(sum(tier.used))
            storage_w += tier.total_capacity / 1e12 * tier.power_per_tb
            storage_w += tier.pj_per_bit * BITS_PER_BYTE_PJ * (read + write)
            state = (read, write, used)
            if self._last.get(tier.name) != state:
                self._last[tier.name] = state
                self.recorder.storage_state(now, tier.name, read, write, used)
        levels = self.levels
        if network_w != levels.network_w or storage_w != levels.storage_w:
            levels.network_w = network_w
            levels.storage_w = storage_w
            if emit:
                levels.emit(now)
