"""A plain timed callback on the simpy queue, for the training engine's own events.

`env.timeout(delay).callbacks.append(f)` builds a full Timeout (and its BoundClass call) for each of
the hundreds of thousands of events of a long replay. `call_after` pushes a slotted stand-in onto the
same heap with the key a Timeout gets, (now + delay, NORMAL, next id), so events run in exactly the
order they would with timeouts; `Environment.step` reads only `callbacks` and `_ok` of it
(and the callbacks given here ignore the event they are passed).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL


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
