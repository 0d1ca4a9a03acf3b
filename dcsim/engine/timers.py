"""A plain timed callback on the simpy queue, for the training engine's own events, and its cancelling.

`env.timeout(delay).callbacks.append(f)` builds a full Timeout (and its BoundClass call) for each of
the hundreds of thousands of events of a long replay. `call_after` pushes a slotted stand-in onto the
same heap with the key a Timeout gets, (now + delay, NORMAL, next id), so events run in exactly the
order they would with timeouts; `Environment.step` reads only `callbacks` and `_ok` of it
(and the callbacks given here ignore the event they are passed).

A call that a later plan made void (a finish planned at an earlier rate, a round request superseded
by the next) is cancelled (`StaleCalls.cancel`) rather than left to run and find itself stale: a
preemptive replay leaves hundreds of thousands of them, which kept the heap ten times its live size.
A cancelled call runs nothing and is not counted as an event; once they are half the heap it is
rebuilt without them (the same (time, priority, id) keys, so the same order for the rest).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from heapq import heapify, heappush
from typing import Any

import simpy
from simpy.events import NORMAL

CANCELLED: list[Callable[[Any], None]] = []  # the callbacks of a cancelled call (compared by identity)
COMPACT_AFTER = 1024  # cancelled calls before the heap may be rebuilt (and at least half of it)


class TimedCall:
    __slots__ = ("callbacks",)
    _ok = True  # what Environment.step checks after the callbacks (a timeout always succeeds)
    _value = None

    def __init__(self, callback: Callable[[Any], None]) -> None:
        self.callbacks: list[Callable[[Any], None]] | None = [callback]


def call_after(env: simpy.Environment, delay: float, callback: Callable[[Any], None]) -> TimedCall:
    """Run `callback(event)` `delay` seconds from now, ordered as a Timeout created now would be; returns
    the queued stand-in (the engine recognises its own next pass at the head of the queue by it)."""
    if delay < 0:
        raise ValueError(f"negative delay {delay}")
    call = TimedCall(callback)
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), call))  # type: ignore[misc]
    return call


class StaleCalls:
    """Cancels timed calls of one environment and drops them from its heap in bulk.

    The run loop steps the clock to a cancelled call it pops, as it did when the call ran and did
    nothing; `dropped_until` is the latest time of a call dropped instead (within `limit`, the run's
    horizon), so the loop can end at the same time as before (Simulation._run)."""

    __slots__ = ("count", "dropped_until", "env", "limit")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.count = 0  # cancelled since the last rebuild (some may have been popped since)
        self.limit = math.inf
        self.dropped_until = -math.inf

    def cancel(self, call: TimedCall) -> None:
        """The call will not run (a call that ran or was cancelled already is left as it is)."""
        if not call.callbacks or call.callbacks is CANCELLED:
            return
        call.callbacks = CANCELLED
        self.count += 1
        if self.count > COMPACT_AFTER and 2 * self.count > len(self.env._queue):
            self.compact()

    def compact(self) -> None:
        """Rebuild the heap without its cancelled calls (in place: the run loop holds the list)."""
        queue: list[Any] = self.env._queue
        limit, latest = self.limit, self.dropped_until
        kept = []
        for entry in queue:
            if entry[3].callbacks is CANCELLED:
                when = entry[0]
                if latest < when <= limit and when != math.inf:
                    latest = when
            else:
                kept.append(entry)
        queue[:] = kept
        heapify(queue)
        self.count = 0
        self.dropped_until = latest
