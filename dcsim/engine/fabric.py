"""The data center's shared bandwidth in the simulation: flows on network and storage links.

Two kinds of flow ride one FlowNetwork (max-min fair, recomputed only when a flow starts or ends):
- streams: open while their owner runs (a job's gradient ring, its dataset input); the owner is
  called back when their rates change and reads the new rates itself;
- transfers: a fixed number of bytes (a checkpoint shard, model weights); their finish event is
  re-planned whenever their rate changes, like a training job's fluid progress.

A stream's rate is its share while it sends; a gradient ring sends only during the communication
part of each step, so its owner also sets a duty (the fraction of time it sends). Link loads are
what flows actually move on average, rate x duty: they feed the link utilization series and the
energy per bit. After every change the fabric reports the loads of the links that changed and
calls `on_change` (the meters of network and storage power and throughput).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import simpy

from dcsim.engine.flows import FlowNetwork
from dcsim.metrics.protocol import Recorder


@dataclass(slots=True, eq=False)
class Transfer:
    flow: int
    remaining: float  # bytes
    rate: float = 0.0
    since: float = 0.0
    version: int = 0
    group: TransferGroup | None = None


@dataclass(slots=True, eq=False)
class TransferGroup:
    """Transfers that finish together as far as their owner is concerned (e.g. the shards of one
    checkpoint written from every node of a job)."""

    outstanding: int
    on_done: Callable[[], None]
    latency: float = 0.0
    transfers: list[Transfer] = field(default_factory=list)


class Fabric:
    def __init__(self, env: simpy.Environment, capacities: Sequence[float], recorder: Recorder,
                 recorded_links: int | None = None) -> None:
        self.env = env
        self.recorded_links = len(capacities) if recorded_links is None else recorded_links  # the network's
        self.net = FlowNetwork(capacities)
        self.recorder = recorder
        self._owners: dict[int, Callable[[], None]] = {}  # stream flow -> its owner's callback
        self._transfers: dict[int, Transfer] = {}
        self.duty: dict[int, float] = {}  # flows sending only part of the time (absent: always)
        self.used = np.zeros(len(capacities))  # bytes/s each link moves on average (rate x duty)
        self._dirty: set[int] = set()  # links whose `used` must be recomputed
        self._in_change = False
        self._ending: list[Transfer] = []  # transfers whose end event fired at this instant
        self._flush_pending = False
        self.on_change: Callable[[], None] | None = None
        self.changes = 0  # flow starts and ends, for benchmarks

    # --- streams --------------------------------------------------------------------------------
    def open(self, paths: Sequence[Sequence[int]], caps: Sequence[float] | None,
             owner: Callable[[], None]) -> list[int]:
        """Start streams for `owner`; it is not called back for this change (it reads its rates)."""
        flows = self.net.add_many(paths, caps)
        for flow in flows:
            self._owners[flow] = owner
        self._after_change(flows_touched(self.net, flows), skip=owner)
        return flows

    def close(self, flows: Sequence[int]) -> None:
        if not flows:
            return
        links = flows_touched(self.net, flows)
        for flow in flows:
            del self._owners[flow]
            self.duty.pop(flow, None)
        self.net.remove_many(flows)
        self._after_change(links)

    def rate(self, flow: int) -> float:
        return self.net.rates[flow]

    def set_duty(self, flows: Sequence[int], duties: Sequence[float]) -> None:
        """The fraction of time each of these streams sends (their owner's step changed)."""
        for flow, duty in zip(flows, duties, strict=True):
            duty = min(1.0, max(0.0, duty))
            if self.duty.get(flow, 1.0) != duty:
                self.duty[flow] = duty
                self._dirty.update(self.net.flows[flow].tolist())
        if not self._in_change:
            self._record()

    # --- transfers ------------------------------------------------------------------------------
    def transfer(self, paths: Sequence[Sequence[int]], sizes: Sequence[float], on_done: Callable[[], None],
                 latency: float = 0.0) -> TransferGroup:
        """Move sizes[i] bytes over paths[i], all at once; call `on_done` when the last one ends
        (plus `latency`, paid once)."""
        group = TransferGroup(len(paths), on_done, latency)
        if not paths:
            self._group_done(group)
            return group
        flows = self.net.add_many(paths)
        now = self.env.now
        for flow, size in zip(flows, sizes, strict=True):
            transfer = Transfer(flow, float(size), since=now, group=group)
            self._transfers[flow] = transfer
            group.transfers.append(transfer)
        self._after_change(flows_touched(self.net, flows))
        return group

    def _replan(self, transfer: Transfer) -> None:
        now = self.env.now
        transfer.remaining = max(0.0, transfer.remaining - transfer.rate * (now - transfer.since))
        transfer.since = now
        transfer.rate = self.net.rates[transfer.flow]
        transfer.version += 1
        delay = transfer.remaining / transfer.rate if transfer.rate > 0 else math.inf
        if math.isfinite(delay):
            self.env.timeout(delay).callbacks.append(partial(self._on_transfer_end, transfer, transfer.version))

    def _on_transfer_end(self, transfer: Transfer, version: int, _event: simpy.Event) -> None:
        if version != transfer.version or transfer.flow not in self._transfers:
            return
        self._ending.append(transfer)
        if not self._flush_pending:  # end every transfer finishing at this instant with one recomputation
            self._flush_pending = True
            self.env.timeout(0).callbacks.append(self._flush_ends)

    def _flush_ends(self, _event: simpy.Event) -> None:
        self._flush_pending = False
        now = self.env.now
        ending = {t.flow: t for t in self._ending if t.flow in self._transfers}
        self._ending = []
        for transfer in self._transfers.values():  # others within rounding of their end finish now too
            if transfer.flow not in ending and transfer.rate > 0 and \
                    transfer.remaining - transfer.rate * (now - transfer.since) <= 1e-9 * max(transfer.remaining, 1.0):
                ending[transfer.flow] = transfer
        if not ending:
            return
        done = sorted(ending.values(), key=lambda t: t.flow)
        flows = [t.flow for t in done]
        links = flows_touched(self.net, flows)
        for transfer in done:
            del self._transfers[transfer.flow]
            transfer.remaining = 0.0
            transfer.version += 1
        self.net.remove_many(flows)
        self._after_change(links)
        for transfer in done:
            group = transfer.group
            assert group is not None
            group.outstanding -= 1
            if group.outstanding == 0:
                self._group_done(group)

    def _group_done(self, group: TransferGroup) -> None:
        if group.latency > 0:
            self.env.timeout(group.latency).callbacks.append(lambda _event: group.on_done())
        else:
            group.on_done()

    # --- after every change ---------------------------------------------------------------------
    def _after_change(self, links: np.ndarray, skip: Callable[[], None] | None = None) -> None:
        self.changes += 1
        net = self.net
        owners: dict[int, Callable[[], None]] = {}
        for flow in net.changed:
            transfer = self._transfers.get(flow)
            if transfer is not None:
                self._replan(transfer)
                continue
            owner = self._owners.get(flow)
            if owner is not None and owner is not skip:
                owners.setdefault(id(owner), owner)
        moved = [net.flows[f] for f in net.changed if f in net.flows]
        self._dirty.update(links.tolist())
        for path in moved:
            self._dirty.update(path.tolist())
        self._in_change = True
        try:
            for owner in owners.values():
                owner()
        finally:
            self._in_change = False
        self._record()

    def _record(self) -> None:
        """Recompute the average load of dirty links, report the network's, then the meters."""
        if self._dirty:
            links = sorted(self._dirty)
            self._dirty.clear()
            rates, duty, on_link, used = self.net.rates, self.duty, self.net.on_link, self.used
            for link in links:
                used[link] = sum(rates[f] * duty.get(f, 1.0) for f in on_link[link])
            shown = [link for link in links if link < self.recorded_links]
            if shown:
                self.recorder.link_loads(self.env.now, shown, used[shown].tolist())
        if self.on_change is not None:
            self.on_change()


def flows_touched(net: FlowNetwork, flows: Sequence[int]) -> np.ndarray:
    """The links of `flows` (read before they are removed); _after_change adds those of every flow
    whose rate the change moved."""
    own = [net.flows[f] for f in flows if f in net.flows]
    return np.unique(np.concatenate(own)) if own else np.zeros(0, dtype=np.int64)
