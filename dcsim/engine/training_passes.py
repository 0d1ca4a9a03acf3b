"""The training engine's scheduling passes: requested, one per instant, run inline when due next.

A mixin of TrainingEngine, apart so the engine module keeps to arrivals and the job's transitions.
Any change of state asks for a pass (`_request_pass`); the pass is a timed call at this instant, so
the changes of one instant are decided together. Where the pass asked for is the next event in the
queue, the engine runs it at once instead of stepping simpy to it: the same order, still counted in
`events` (`inline_passes`), and one level row for the instant (docs/scheduling.md).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop

import simpy

from dcsim.engine.levels import LevelBoard
from dcsim.engine.timers import call_after
from dcsim.errors import PolicyError
from dcsim.model import Job
from dcsim.policies.base import TRUSTED_SCHEDULERS, TrainingScheduler

MAX_PASSES_AT_ONCE = 10_000


class TrainingPasses:
    env: simpy.Environment
    scheduler: TrainingScheduler
    levels: LevelBoard
    _queue: dict[int, Job]
    _active: dict[int, Job]
    _round_due: bool
    _pass_pending: bool
    _pass_call: object
    _pass_time: float
    _passes_now: int
    inline_passes: int
    on_release: Callable[[], None] | None
    on_queue: Callable[[], None] | None
    _apply: Callable[[object], None]
    _start_job: Callable[[Job, str], None]
    _plan_round: Callable[[float], None]
    suspend: Callable[..., None]
    _emit_levels: Callable[[], None]
    inline_passes_allowed = True  # run a pass due next at once (_run_pass); tests turn it off to compare
    trusted_passes_allowed = True  # apply TRUSTED_SCHEDULERS' planned passes unchecked; tests turn it off

    def _request_pass(self) -> None:
        if not self._pass_pending:
            self._pass_pending = True
            self._pass_call = call_after(self.env, 0, self._run_pass)

    def _run_pass(self, _event: simpy.Event) -> None:
        """One pass, and the passes its own decisions request while nothing else is due at this instant.

        A preemption that costs nothing frees its accelerators while the pass is applied, which requests
        another pass at this instant. Where that request is the head of the event queue, simpy would
        run it next: it runs here instead, in the same order and counted as an event all the same
        (`inline_passes`). The level row is then reported once, after the last of them (rows at one
        instant overwrite each other), unless a power policy settles its state at every row."""
        self._pass_chain(False)

    def _pass_chain(self, changed: bool) -> None:
        """The pass due now and the follow-ups it brings about (see _run_pass); one level row at the end
        if `changed` or a pass decided anything."""
        queue = self.env._queue
        while True:
            self._pass_pending = False
            if self._pass_body():
                if self.levels.before_emit is not None:
                    self._emit_levels()
                else:
                    changed = True
            if not self._pass_pending or queue[0][3] is not self._pass_call or not self.inline_passes_allowed:
                break
            heappop(queue)  # the pass just requested is due next: run it now
            self.inline_passes += 1
        if changed:
            self._emit_levels()

    def _emit_or_pass(self) -> None:
        """At the end of an arrival or a completion: report the level row, or, where the pass it requested
        is due next (nothing else before it at this instant), run that pass now and report one row after
        it. The same order as simpy's and the same last row at this instant, as long as no hook sees
        or changes the levels in between (power policies, autoscalers)."""
        if self._pass_pending and self.env._queue[0][3] is self._pass_call and self.levels.before_emit is None \
                and self.on_release is None and self.on_queue is None and self.inline_passes_allowed:
            heappop(self.env._queue)
            self.inline_passes += 1
            self._pass_chain(True)
        else:
            self._emit_levels()

    def _pass_body(self) -> bool:
        """Ask the scheduler and apply its decisions; True if it returned any."""
        round_due, self._round_due = self._round_due, False
        if not self._queue and not (round_due and self._active):  # a requested pass runs with no queue
            return False
        now = self.env._now
        self._passes_now = self._passes_now + 1 if now == self._pass_time else 1
        self._pass_time = now
        if self._passes_now > MAX_PASSES_AT_ONCE:  # preempting and restarting for ever at one instant
            raise PolicyError(f"scheduler {getattr(self.scheduler, 'name', '?')!r} made {MAX_PASSES_AT_ONCE} "
                              f"passes at t = {now} s without time moving on (its decisions do not settle)")
        scheduler = self.scheduler
        if type(scheduler) in TRUSTED_SCHEDULERS and self.trusted_passes_allowed:
            # A built-in's planned pass, applied as its decisions would be without building and checking them.
            preempt, starts, after = scheduler.plan_pass(self)  # type: ignore[attr-defined]
            for job in preempt:
                self.suspend(job)
            for job, model in starts:
                self._start_job(job, model)
            if after is not None:
                self._plan_round(after)
            return bool(preempt or starts or after is not None)
        decisions = scheduler.schedule(self)  # type: ignore[arg-type]  # TrainingEngine is the view
        for decision in decisions:
            self._apply(decision)
        return bool(decisions)
