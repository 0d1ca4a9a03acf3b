"""The greedy walk of preemptive.plan over books kept between passes, for long replays.

`plan` ranks every present job on every pass: O(jobs present) per pass, which dominates replays of
tens of thousands of jobs. Here the jobs stay ranked between passes: queued jobs in one `KeyBlocks`
and running jobs in one per accelerator model, each a list of sorted blocks of (key, demand, job)
that carry their demand sums. `walk` gives the decisions plan would give for the same order:
- it steps through queued jobs in key order and stops once no queued job can fit anywhere;
- a queued job looking at model m first brings m's running jobs ranked above it up to date, a whole
  block at once where the block fits in what is left of m's budget (then all its jobs keep their
  accelerators, whatever their order inside it), job by job otherwise;
- running jobs ranked below the last queued job it looked at are walked the same way at the end.
A running job's fate depends only on its own model's budget, so bringing each model up to date only
when a queued job looks at it (or at the end) gives the same fates as plan's single pass. Cost per
pass: blocks skipped + jobs whose fate is decided one by one (about the decisions and the queued jobs
that take a place), not the jobs present. Keys must be unique (they end with the job id) and totally
ordered; tests/test_preemption_speed.py runs random workloads through both and compares the results.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from typing import Any, Protocol

from dcsim.policies.base import JobView, PreemptiveView

Key = tuple[Any, ...]
Entry = tuple[Key, int, JobView]
BLOCK = 32  # entries per block before it splits in two
LAST: Key = (float("inf"),)  # ranks below every key whose first item is a finite number


class LiveView(PreemptiveView, Protocol):
    """What the books read besides PreemptiveView (the training engine's view provides it)."""

    def active_ids(self) -> Set[int]:
        """Ids of the jobs running() yields (starting or computing), a live set."""
        ...

    def computing_ids(self) -> Set[int]:
        """Ids of the running jobs that compute now (past their start-up or restore), a live set."""
        ...

    @property
    def exit_mark(self) -> int:
        """How many times a job has left the running set so far; pass to exited_since()."""
        ...

    def exited_since(self, mark: int) -> Sequence[int]:
        """Ids of the jobs that left the running set since exit_mark was `mark` (a job may repeat)."""
        ...


def has_live_ids(view: PreemptiveView) -> bool:
    return hasattr(view, "active_ids") and hasattr(view, "computing_ids") and hasattr(view, "exited_since")


class KeyBlocks:
    """Entries sorted by key in blocks of at most 2 x BLOCK, each block with its last key, its
    entries' demands (a plain list, summed by slices), their total and their smallest (the walk
    passes over a block of queued jobs none of which fits; 0 while unknown, see smallest())."""

    __slots__ = ("blocks", "count", "demands", "lasts", "mins", "sums")

    def __init__(self) -> None:
        self.blocks: list[list[Entry]] = []
        self.demands: list[list[int]] = []
        self.sums: list[int] = []
        self.mins: list[int] = []
        self.lasts: list[Key] = []
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def insert(self, key: Key, demand: int, job: JobView) -> None:
        blocks = self.blocks
        self.count += 1
        if not blocks:
            blocks.append([(key, demand, job)])
            self.demands.append([demand])
            self.sums.append(demand)
            self.mins.append(demand)
            self.lasts.append(key)
            return
        i = bisect_left(self.lasts, key)
        if i == len(blocks):
            i -= 1
        block, demands = blocks[i], self.demands[i]
        j = bisect_left(block, (key,))
        block.insert(j, (key, demand, job))
        demands.insert(j, demand)
        self.sums[i] += demand
        if demand < self.mins[i]:
            self.mins[i] = demand
        if j == len(block) - 1:
            self.lasts[i] = key
        if len(block) > 2 * BLOCK:
            blocks[i:i + 1] = [block[:BLOCK], block[BLOCK:]]
            self.demands[i:i + 1] = [demands[:BLOCK], demands[BLOCK:]]
            self.sums[i:i + 1] = [sum(self.demands[i]), sum(self.demands[i + 1])]
            self.mins[i:i + 1] = [min(self.demands[i]), min(self.demands[i + 1])]
            self.lasts[i:i + 1] = [blocks[i][-1][0], blocks[i + 1][-1][0]]

    def remove(self, key: Key, demand: int) -> None:
        i = bisect_left(self.lasts, key)
        block = self.blocks[i] if i < len(self.blocks) else []
        j = bisect_left(block, (key,))
        if j == len(block) or block[j][0] != key:
            raise KeyError(key)
        del block[j]
        self.count -= 1
        if block:
            demands = self.demands[i]
            del demands[j]
            self.sums[i] -= demand
            if demand == self.mins[i]:
                self.mins[i] = 0  # unknown until smallest() asks (running jobs' blocks never do)
            if j == len(block):
                self.lasts[i] = block[-1][0]
        else:
            del self.blocks[i], self.demands[i], self.sums[i], self.mins[i], self.lasts[i]

    def smallest(self, i: int) -> int:
        """The smallest demand in block i (the walk inlines this)."""
        if not self.mins[i]:
            self.mins[i] = min(self.demands[i])
        return self.mins[i]

    def __iter__(self) -> Iterator[Entry]:
        for block in self.blocks:
            yield from block


class _Cursor:
    """Where the walk stands in one model's running jobs, and what is left of that model's budget."""

    __slots__ = ("block", "books", "left", "pos")

    def __init__(self, books: KeyBlocks, left: int) -> None:
        self.books = books
        self.block = 0
        self.pos = 0
        self.left = left

    def advance(self, bound: Key, preempt: list[tuple[Key, JobView]]) -> None:
        """Decide the running jobs ranked above `bound`: keep those that fit, preempt the others."""
        books = self.books
        blocks = books.blocks
        b, pos = self.block, self.pos
        count = len(blocks)
        if b < count and not blocks[b][pos][0] < bound:
            return  # the next running job already ranks below the bound (what the loop would find)
        demands, lasts, sums, left = books.demands, books.lasts, books.sums, self.left
        while b < count:
            # Whole blocks ranked above the bound, all kept if their sum fits: one step.
            whole = bisect_left(lasts, bound, b)
            if whole > b:
                segment = sum(sums[b:whole]) - (sum(demands[b][:pos]) if pos else 0)
                if segment <= left:
                    left -= segment
                    b, pos = whole, 0
                    continue
            block = blocks[b]
            end = len(block) if lasts[b] < bound else bisect_left(block, (bound,), pos)
            segment = sum(demands[b][pos:end])
            if segment <= left:  # all of them keep their accelerators
                left -= segment
            else:
                for key, demand, job in block[pos:end]:
                    if left >= demand:
                        left -= demand
                    else:
                        preempt.append((key, job))
            if end < len(block):
                self.block, self.pos, self.left = b, end, left
                return
            b += 1
            pos = 0
        self.block, self.pos, self.left = b, pos, left


class Cursor(Protocol):
    left: int

    def advance(self, bound: Key, preempt: list[tuple[Key, JobView]]) -> None: ...


def cursors_for(running: Mapping[str, KeyBlocks], budget: Mapping[str, int]) -> dict[str, Cursor]:
    return {m: _Cursor(running[m] if m in running else KeyBlocks(), budget[m]) for m in budget}


def walk(queued: KeyBlocks, cursors: Mapping[str, Cursor], free: Mapping[str, int],
         candidates: Callable[[JobView], Sequence[str]], smallest_queued: float,
         waiting: list[tuple[JobView, str]] | None = None,
         ) -> tuple[list[tuple[Key, JobView]], list[tuple[JobView, str]]]:
    """The fates plan() would give: (running jobs to preempt in rank order, (queued job, model) to start now).

    `cursors`: per model, its running jobs and its budget (free + releasing + held by running jobs);
    `smallest_queued`: the smallest demand of any queued job (the walk of the queue stops once no
    model has that much left); `waiting`, if given, receives the queued jobs that have a place in the
    budget but not yet free accelerators, in rank order (see FollowUp)."""
    free_now = dict(free)
    preempt: list[tuple[Key, JobView]] = []
    starts: list[tuple[JobView, str]] = []
    every = list(cursors.values())
    only = every[0] if len(every) == 1 else None
    if only is not None:
        (model,) = cursors
        _walk_one(queued, model, only, free_now[model], candidates, smallest_queued, preempt, starts, waiting)
    elif any(c.left >= smallest_queued for c in every):
        for key, demand, job in _fitting(queued, every):
            for model in candidates(job):
                cursor = cursors[model]
                if cursor.left < demand:
                    continue  # what is left only shrinks as the walk goes on: it cannot fit here
                cursor.advance(key, preempt)
                if cursor.left >= demand:
                    cursor.left -= demand
                    if free_now[model] >= demand:
                        free_now[model] -= demand
                        starts.append((job, model))
                    elif waiting is not None:
                        waiting.append((job, model))
                    break
            # Once no model has room for the smallest queued job, the rest of the queue changes nothing.
            if all(c.left < smallest_queued for c in every):
                break
    for cursor in every:
        cursor.advance(LAST, preempt)
    if len(every) > 1:
        preempt.sort(key=lambda entry: entry[0])
    return preempt, starts


def _walk_one(queued: KeyBlocks, model: str, cursor: Cursor, free: int, candidates: Callable[[JobView], Sequence[str]],
              smallest_queued: float, preempt: list[tuple[Key, JobView]], starts: list[tuple[JobView, str]],
              waiting: list[tuple[JobView, str]] | None) -> None:
    """walk's loop over the queue where the cluster has one accelerator model (Philly): the same steps
    with _fitting's block skipping inlined, and a job's models read only where it fits what is left."""
    if cursor.left < smallest_queued:
        return
    mins = queued.mins
    for index, block in enumerate(queued.blocks):
        smallest = mins[index] or queued.smallest(index)
        if smallest > cursor.left:
            continue  # none of these fits (as _fitting)
        for key, demand, job in block:
            if cursor.left >= demand and model in candidates(job):
                cursor.advance(key, preempt)
                if cursor.left >= demand:
                    cursor.left -= demand
                    if free >= demand:
                        free -= demand
                        starts.append((job, model))
                    elif waiting is not None:
                        waiting.append((job, model))
            if cursor.left < smallest_queued:
                return


def _fitting(queued: KeyBlocks, every: list[Cursor]) -> Iterator[Entry]:
    """Queued entries in key order, less whole blocks whose smallest demand exceeds what every model
    has left: each of their jobs would be passed over (what is left only shrinks), and the walk's
    stopping test, which reads only what is left, would not stop inside them."""
    mins = queued.mins
    for index, block in enumerate(queued.blocks):
        smallest = mins[index] or queued.smallest(index)
        if all(smallest > cursor.left for cursor in every):
            continue
        yield from block


class Books(Protocol):
    """What sync_books needs of tiresias' and las' books."""

    mark: int
    exit_mark: int

    @property
    def known(self) -> Mapping[int, Any]: ...

    def _remove_running(self, job_id: int) -> None: ...
    def _rebuild(self, view: LiveView) -> None: ...
    def _add_queued(self, view: LiveView, job: Any) -> None: ...


def sync_books(books: Books, view: LiveView) -> bool:
    """The catching up both books share: drop the jobs that left the running set and take the queue's
    new arrivals. False: the books were rebuilt instead (a job started behind their back)."""
    active = view.active_ids()
    known = books.known
    if len(active) != len(known):
        # The jobs that left since the last pass, from the view's log: known - active without the set
        # difference (the order of removal does not matter to the books).
        for job_id in view.exited_since(books.exit_mark):
            if job_id in known and job_id not in active:
                books._remove_running(job_id)
        if len(active) != len(known):
            books._rebuild(view)
            return False
    books.exit_mark = view.exit_mark
    mark = view.arrival_mark
    if mark != books.mark:
        for job in view.queued_since(books.mark):
            books._add_queued(view, job)
        books.mark = mark
    return True


class FollowUp:
    """What a pass that preempted knows of the pass its preemptions bring about at the same instant.

    On one accelerator model, where the preempted jobs' accelerators are free at once and nothing
    else changed (no time passed, no other job arrived, stopped or moved), the next pass ranks the
    same jobs by the same keys against the same budget: every running job fits where it did, each
    preempted job (queued now) still misses its place, and the queued jobs that had a place but no free
    accelerators (`waiting`, in rank order) start wherever they fit in what is free now, greedily as
    the walk does. `starts` gives those decisions without the walk, or None where anything else
    changed (then the books catch up and walk as usual). tests/test_preemption_speed.py compares."""

    __slots__ = ("exit_mark", "free", "mark", "model", "now", "preempted", "releasing", "waiting")

    def __init__(self, view: LiveView, preempted: list[int], started: int, released: int,
                 waiting: list[tuple[JobView, str]], mark: int, exit_mark: int) -> None:
        (model,) = view.free
        self.model, self.now, self.preempted, self.waiting = model, view.now, preempted, waiting
        self.free = view.free[model] - started + released  # once the pass's decisions are applied
        self.releasing = view.releasing[model]
        self.mark, self.exit_mark = mark, exit_mark

    def starts(self, view: LiveView) -> list[tuple[JobView, str]] | None:
        """The next pass's starts if it is this pass's follow-up (call before the books catch up)."""
        preempted, model = self.preempted, self.model
        if view.now != self.now or view.free.get(model) != self.free or len(view.free) != 1 \
                or view.releasing[model] != self.releasing \
                or view.exit_mark - self.exit_mark != len(preempted) \
                or view.arrival_mark - self.mark != len(preempted) \
                or list(view.exited_since(self.exit_mark)) != preempted \
                or [job.id for job in view.queued_since(self.mark)] != preempted:
            return None
        free = self.free
        starts: list[tuple[JobView, str]] = []
        for job, job_model in self.waiting:
            if free >= job.demand:
                free -= job.demand
                starts.append((job, job_model))
        return starts


def follow_up(view: LiveView, preempt: list[tuple[Key, JobView]], starts: list[tuple[JobView, str]],
              waiting: list[tuple[JobView, str]], mark: int, exit_mark: int) -> FollowUp | None:
    """The FollowUp of a pass on one model that preempted (None otherwise)."""
    if not preempt or len(view.free) != 1:
        return None
    return FollowUp(view, [job.id for _, job in preempt], sum(job.demand for job, _ in starts),
                    sum(job.demand for _, job in preempt), waiting, mark, exit_mark)
