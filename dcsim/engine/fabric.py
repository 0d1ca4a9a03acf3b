"""The data center's shared bandwidth in the simulation: flows on network and storage links.

Two kinds of flow ride one FlowNetwork (max-min fair, recomputed only when flows start or end):
- streams: open while their owner runs (a job's gradient ring, its dataset input); the owner is
  called back when their rates change (also once they have their first) and reads the rates itself;
- transfers: a fixed number of bytes (a checkpoint shard, model weights); their finish event is
  re-planned whenever their rate changes, like a training job's fluid progress.

A stream's rate is its share while it sends; a gradient ring sends only during the communication
part of each step, so its owner also sets what it moves on average (its bytes per step over the
step time). Link loads are what flows actually move on average: they feed the link utilization
series and the energy per bit.

Every flow start and end, and every new average, of one instant is settled together, once, at the
end of that instant (after the scheduler's pass): one recomputation of the rates, one round of owner
callbacks, one record of the link loads that moved, then `on_change` (the meters of network and
storage power and throughput). Simulated time does not pass in between, so nothing is lost by
waiting; and jobs that end and start at one instant cost one recomputation, not several.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import simpy
from simpy.events import NORMAL, EventPriority

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


class _EndOfInstant(simpy.Event):
    """An event due now that runs after all the ordinary events due now (simpy orders events of one
    time by priority, then by creation; ordinary ones have NORMAL priority, this one the next). It is
    built the way simpy builds its Timeout: already triggered, then scheduled."""

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, EventPriority(NORMAL + 1))


class Fabric:
    def __init__(self, env: simpy.Environment, capacities: Sequence[float], recorder: Recorder,
                 recorded_links: int | None = None) -> None:
        self.env = env
        self.recorded_links = len(capacities) if recorded_links is None else recorded_links  # the network's
        self.net = FlowNetwork(capacities)
        self.recorder = recorder
        self._owners: dict[int, Callable[[], None]] = {}  # stream flow -> its owner's callback
        self._transfers: dict[int, Transfer] = {}
        self.used = np.zeros(len(capacities))  # bytes/s each link moves on average
        self._ending: list[Transfer] = []  # transfers whose end event fired at this instant
        self._settle_pending = False
        self._averages: dict[int, tuple[Sequence[int], Sequence[float]]] = {}  # by first stream, since the last record
        self._settling = False
        self.on_change: Callable[[], None] | None = None
        self.changes = 0  # recomputations (each takes every start and end of one instant), for benchmarks

    # --- streams --------------------------------------------------------------------------------
    def open(self, paths: Sequence[Sequence[int]], caps: Sequence[float] | None,
             owner: Callable[[], None]) -> list[int]:
        """Start streams for `owner`. Their rates come later at this instant, with every other start
        and end of it in one recomputation; `owner` is called back then."""
        flows = self.net.add_many(paths, caps, defer=True)
        for flow in flows:
            self._owners[flow] = owner
        self._request_settle()
        return flows

    def close(self, flows: Sequence[int]) -> None:
        if not flows:
            return
        for flow in flows:
            del self._owners[flow]
            self._averages.pop(flow, None)
        self.net.remove_many(flows, defer=True)
        self._request_settle()

    def set_average(self, flows: Sequence[int], averages: Sequence[float]) -> None:
        """What each of these streams moves on average: less than its rate when it sends only part
        of the time. It takes effect in the link loads when this instant settles; a later call for
        the same streams replaces an earlier one."""
        if not flows:
            return
        self._averages[flows[0]] = (flows, averages)
        if not self._settling:  # else the settle in progress records it
            self._request_settle()

    # --- transfers ------------------------------------------------------------------------------
    def transfer(self, paths: Sequence[Sequence[int]], sizes: Sequence[float], on_done: Callable[[], None],
                 latency: float = 0.0) -> TransferGroup:
        """Move sizes[i] bytes over paths[i], all at once; call `on_done` when the last one ends
        (plus `latency`, paid once)."""
        group = TransferGroup(len(paths), on_done, latency)
        if not paths:
            self._group_done(group)
            return group
        flows = self.net.add_many(paths, defer=True)
        now = self.env.now
        for flow, size in zip(flows, sizes, strict=True):
            transfer = Transfer(flow, float(size), since=now, group=group)
            self._transfers[flow] = transfer
            group.transfers.append(transfer)
        self._request_settle()
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
        self._request_settle()

    def _end_transfers(self) -> list[Transfer]:
        """Remove (deferred) the transfers ending at this instant, with any others within rounding
        of their end."""
        now = self.env.now
        ending = {t.flow: t for t in self._ending if t.flow in self._transfers}
        self._ending = []
        if not ending:
            return []
        for transfer in self._transfers.values():
            if transfer.flow not in ending and transfer.rate > 0 and \
                    transfer.remaining - transfer.rate * (now - transfer.since) <= 1e-9 * max(transfer.remaining, 1.0):
                ending[transfer.flow] = transfer
        done = sorted(ending.values(), key=lambda t: t.flow)
        for transfer in done:
            del self._transfers[transfer.flow]
            transfer.remaining = 0.0
            transfer.version += 1
        self.net.remove_many([t.flow for t in done], defer=True)
        return done

    def _group_done(self, group: TransferGroup) -> None:
        if group.latency > 0:
            self.env.timeout(group.latency).callbacks.append(lambda _event: group.on_done())
        else:
            group.on_done()

    # --- once per instant -----------------------------------------------------------------------
    def _request_settle(self) -> None:
        """Settle once, at the end of this instant: after every other event due now, including the
        scheduler passes that a job's end triggers (so its successors' starts join the same settle)."""
        if not self._settle_pending:
            self._settle_pending = True
            _EndOfInstant(self.env).callbacks.append(self._settle)

    def _settle(self, _event: simpy.Event) -> None:
        """One recomputation for every start and end of this instant; then re-plan the transfers whose
        rate moved, call the owners of the streams whose rate moved, record, and finish the transfers
        that ended (whose groups may start more)."""
        self._settle_pending = False
        done = self._end_transfers()
        net = self.net
        if net.pending:
            self.changes += 1
            net.commit()
            transfers, owner_of = self._transfers, self._owners
            owners: dict[Callable[[], None], None] = {}  # each once, in the order met
            for flow in net.changed:
                owner = owner_of.get(flow)
                if owner is not None:
                    owners[owner] = None
                elif flow in transfers:
                    self._replan(transfers[flow])
            self._settling = True
            try:
                for owner in owners:
                    owner()
            finally:
                self._settling = False
            self._record()
        elif self._averages:
            self._record()
        for transfer in done:
            group = transfer.group
            assert group is not None
            group.outstanding -= 1
            if group.outstanding == 0:
                self._group_done(group)

    def _record(self) -> None:
        """Recompute the average load of every link, report the network links whose load moved, then
        call the meters."""
        if self._averages:
            flows = [flow for flows, _ in self._averages.values() for flow in flows]
            averages = [value for _, values in self._averages.values() for value in values]
            self._averages.clear()
            self.net.set_averages(flows, averages)
        used = self.net.average_load()
        moved = np.flatnonzero(used[:self.recorded_links] != self.used[:self.recorded_links])
        self.used = used
        if len(moved):
            self.recorder.link_loads(self.env.now, moved, used[moved])
        if self.on_change is not None:
            self.on_change()


