"""One inference replica: its queue, its batch, its KV cache, and the closed-form iteration clock.

The decoding part of the batch is kept so that advancing it by K iterations is O(1): a counter
`iteration` counts decode iterations since the replica started; a request that joined decoding at
iteration j with `c` KV tokens holds c + (i - j) tokens at iteration i and finishes at a known
iteration (a heap gives the next one). The sum of contexts is `context_offset + decoding x iteration`.

Decode iteration time is affine in the batch's context (calibration.inference):
d(B, C) = decode_fixed + decode_request B + decode_context C, and C grows by B per iteration, so
K iterations take K d(B, C0) + decode_context B K (K - 1) / 2. That closed form is what lets the
serving engine skip every decode iteration in which no request arrives, finishes or is preempted.

KV cache (token granular): a running request holds prompt + generated - 1 tokens; admission reserves
its whole prompt (plus generated tokens when it is recomputed after a preemption); each decode
iteration needs one more token per decoding request. When that does not fit, the most recently
admitted decoding request is preempted: its tokens are freed and it goes back to the head of the
queue, to be prefilled again over prompt + generated tokens (recompute, as vLLM does).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import simpy

from dcsim.model import Request, RequestState
from dcsim.policies.serving_base import RequestView


class IterationTiming(Protocol):
    """Coefficients of iteration time (calibration.inference.IterationConstants, in seconds)."""

    @property
    def prefill_fixed(self) -> float: ...
    @property
    def prefill_token(self) -> float: ...
    @property
    def prefill_token_sq(self) -> float: ...
    @property
    def decode_fixed(self) -> float: ...
    @property
    def decode_request(self) -> float: ...
    @property
    def decode_context(self) -> float: ...


@dataclass(frozen=True)
class ReplicaShape:
    """What replicas of one group share: hardware, model timings, capacity and power."""

    group: int
    accelerator: str
    tensor_parallel: int
    kv_capacity: int  # tokens
    max_batch: int
    timing: IterationTiming
    cold_start: float  # seconds to load the weights
    idle_w: float  # whole replica, idle
    busy_w: Callable[[int], float]  # whole replica, iterating with this many requests in the batch
    speed: float  # output tokens/s at batch 32 with 1,024 context tokens each
    weight_bytes: float = 0.0
    weights_from: str | None = None  # storage tier the weights are loaded from (then cold_start is unused)
    paged: object = None  # engine.kv_blocks.PagedSpec: the replica counts KV in blocks (PagedReplica)
    pool: str = ""  # disaggregated services: "prefill" or "decode" (engine/disaggregation.py); "" does both


class Replica:
    """Engine-owned state of one replica; also the read-only view its policies see.

    The KV ledger's hooks (kv_cost ... request_done) are token granular here; engine/kv_blocks.py
    overrides them for paged KV with prefix caching."""

    paged = False
    # Slots: the engine reads these at every event, and a replica has more attributes than CPython keeps in
    # a compact (faster) instance dict (30); "__dict__" leaves room for others.
    __slots__ = ("__dict__", "_finishes", "accelerator", "boundary_at", "busy_since", "busy_time",
                 "completed", "context_offset", "draining", "env", "id", "iteration", "kv_capacity",
                 "levels_stale", "max_batch", "members", "node_id", "node_name", "output_tokens",
                 "outstanding", "outstanding_tokens", "pending_chunks", "pending_decode", "prefilled_in",
                 "prefilling", "ready", "reported_extra_w", "requested", "reserved_prefill", "segment_first",
                 "segment_k", "segment_start", "service", "service_name", "shape", "speed", "stopped",
                 "tensor_parallel", "transfer_pending", "version", "waiting")

    def __init__(self, env: simpy.Environment, replica_id: int, service: int, service_name: str,
                 shape: ReplicaShape, node_id: int, node_name: str) -> None:
        self.env = env
        self.id = replica_id
        self.service = service
        self.service_name = service_name
        self.shape = shape
        self.accelerator = shape.accelerator
        self.tensor_parallel = shape.tensor_parallel
        self.kv_capacity = shape.kv_capacity
        self.max_batch = shape.max_batch
        self.speed = shape.speed
        self.node_id = node_id
        self.node_name = node_name
        self.requested = env.now
        self.ready: float | None = None
        self.stopped: float | None = None
        self.draining = False
        self.waiting: deque[Request] = deque()
        self.prefilled_in: deque[Request] = deque()  # decode pool: KV cache arrived, to join decoding
        self.prefilling: list[Request] = []
        self.members: dict[int, Request] = {}  # decoding requests by admission sequence (oldest first)
        self._finishes: list[tuple[int, int, Request]] = []  # (finish iteration, seq, request)
        self.iteration = 0
        self.context_offset = 0
        self.reserved_prefill = 0
        self.outstanding = 0
        self.outstanding_tokens = 0
        self.completed = 0
        self.output_tokens = 0
        self.busy_time = 0.0
        self.busy_since: float | None = None
        self.reported_extra_w = 0.0  # this replica's share of LevelBoard.serving_extra_w
        self.levels_stale = False
        self.version = 0  # bumps invalidate a planned boundary event
        self.boundary_at = math.inf  # time of the planned boundary event (inf: idle)
        # the running stretch: an explicit iteration (segment_k = 0) or K fast-forwarded decode iterations
        self.segment_start = 0.0
        self.segment_first = 0.0  # duration of the stretch's first decode iteration
        self.segment_k = 0
        self.pending_chunks: tuple[tuple[Request, int], ...] = ()
        self.pending_decode = False
        self.transfer_pending = 0.0  # seconds of host <-> accelerator KV copies the next iteration waits for

    # --- views ----------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.env.now

    @property
    def decoding(self) -> int:
        return len(self.members)

    @property
    def batch(self) -> int:
        return len(self.members) + len(self.prefilling)

    @property
    def kv_used(self) -> int:
        return self.reserved_prefill + self.context_offset + len(self.members) * self.iteration

    @property
    def kv_free(self) -> int:
        return self.kv_capacity - self.kv_used

    def kv_cost(self, request: RequestView) -> int:
        """KV tokens its admission takes from kv_free."""
        return request.need

    def prefix_hit(self, request: RequestView) -> int:
        """Tokens of its next prefill already cached here (none without paged KV)."""
        return 0

    def needs_preemption(self) -> bool:
        """Whether the next decode iteration of the decoding set would overflow the KV cache."""
        return self.kv_used + len(self.members) > self.kv_capacity

    def decode_room(self, cap: int) -> int:
        """Decode iterations of the decoding set (at most `cap`) that fit the KV cache (>= 1 when cap >= 1
        after needs_preemption is False)."""
        return min(cap, self.kv_free // len(self.members))

    def reserve(self, iterations: int) -> None:
        """Make room for `iterations` decode iterations (paged KV evicts cached prefixes)."""

    def record_sample(self) -> None:
        """Note cache occupancy (paged KV only)."""

    # --- batch changes --------------------------------------------------------------------------
    def prefill_done(self, request: Request) -> None:
        """Its prefill ended: its reservation becomes decoding context (start_decoding) or is freed."""
        self.reserved_prefill -= request.need

    def request_done(self, request: Request) -> None:
        """It finished here (paged KV releases its cache entries)."""

    def admit(self, request: Request, seq: int) -> None:
        request.seq = seq
        request.prefilled = 0
        request.state = RequestState.RUNNING
        if request.admitted is None:
            request.admitted = self.env.now
        self.prefilling.append(request)
        self.reserved_prefill += request.need

    def can_join(self, request: Request) -> bool:
        """Whether a request whose KV cache arrived from a prefill replica fits beside the batch, with the
        next iteration's token for every decoding request and itself."""
        context = request.prompt_tokens + request.generated - 1
        return self.kv_used + context + self.decoding + 1 <= self.kv_capacity

    def join_decoding(self, request: Request) -> None:
        """A request whose KV cache arrived joins the decoding set (can_join said it fits)."""
        self.start_decoding(request)

    def start_decoding(self, request: Request) -> None:
        """A request whose prefill just produced a token joins the decoding set."""
        context = request.prompt_tokens + request.generated - 1
        request.join_iteration = self.iteration
        request.finish_iteration = self.iteration + request.output_tokens - request.generated
        self.members[request.seq] = request
        self.context_offset += context - self.iteration
        heapq.heappush(self._finishes, (request.finish_iteration, request.seq, request))

    def _leave_decoding(self, request: Request) -> None:
        del self.members[request.seq]
        context = request.prompt_tokens + request.generated - 1
        self.context_offset -= context - self.iteration

    def advance(self, iterations: int) -> list[Request]:
        """Run `iterations` decode iterations of the current decoding set; return who finished."""
        self.iteration += iterations
        done: list[Request] = []
        finishes = self._finishes
        while finishes and finishes[0][0] <= self.iteration:
            _, seq, request = heapq.heappop(finishes)
            if self.members.get(seq) is not request:
                continue  # preempted since it was pushed
            request.generated = request.output_tokens
            self._leave_decoding(request)
            done.append(request)
        return done

    def next_finish(self) -> int:
        """Decode iterations until the next decoding request finishes."""
        finishes = self._finishes
        while finishes and self.members.get(finishes[0][1]) is not finishes[0][2]:
            heapq.heappop(finishes)  # drop entries of preempted requests
        return finishes[0][0] - self.iteration if finishes else 0

    def kv_used_at(self, now: float) -> int:
        """KV tokens in use at `now`, counting the iterations of a fast-forwarded stretch done by then."""
        elapsed = now - self.segment_start
        if self.segment_k == 0 or not self.members or elapsed <= 0:  # (no iteration done: the stretch starts)
            return self.kv_used
        done = self.iterations_by(elapsed)
        if done > 0 and self.stretch_duration(done) > elapsed:
            done -= 1
        return self.kv_used + len(self.members) * done

    def preempt_newest(self) -> Request:
        seq = max(self.members)  # the most recently admitted decoding request
        request = self.members[seq]
        request.generated += self.iteration - request.join_iteration
        self._leave_decoding(request)
        request.state = RequestState.PENDING
        request.preemptions += 1
        request.prefilled = 0
        self.waiting.appendleft(request)
        return request

    # --- timing ---------------------------------------------------------------------------------
    def decode_time(self) -> float:
        """Duration of the next decode iteration of the current decoding set."""
        k = self.shape.timing
        decoding = len(self.members)
        context = self.context_offset + decoding * self.iteration
        return k.decode_fixed + k.decode_request * decoding + k.decode_context * context

    def iteration_time(self, chunks: tuple[tuple[Request, int], ...], decode: bool) -> float:
        """One explicit iteration: prompt chunks (each its marginal prefill cost) and/or a decode step.

        Prefill cost is additive over requests (weights are read once: one fixed cost); a chunk of c
        tokens after p already prefilled costs the difference of the prompt curve between p + c and p,
        which charges its attention over the earlier chunks. A mixed iteration pays the larger fixed cost."""
        k = self.shape.timing
        total = 0.0
        fixed = 0.0
        if chunks:
            fixed = k.prefill_fixed
            for request, tokens in chunks:
                before = request.prefilled
                after = before + tokens
                total += k.prefill_token * tokens + k.prefill_token_sq * (after * after - before * before)
        if decode and self.members:
            fixed = max(fixed, k.decode_fixed)
            decoding = len(self.members)
            total += k.decode_request * decoding + k.decode_context * (self.context_offset + decoding * self.iteration)
        return fixed + total

    def stretch_duration(self, k: int) -> float:
        """Seconds for k decode iterations of the segment, from its start (closed form)."""
        step = self.shape.timing.decode_context * len(self.members)
        return k * self.segment_first + step * k * (k - 1) / 2

    def iterations_by(self, elapsed: float) -> int:
        """Smallest k >= 0 whose cumulative stretch duration reaches `elapsed` (capped at segment_k)."""
        if elapsed <= 0:
            return 0
        a, step = self.segment_first, self.shape.timing.decode_context * len(self.members)
        if step > 0:  # solve step/2 k^2 + (a - step/2) k = elapsed
            b = a - step / 2
            k = math.ceil((-b + math.sqrt(b * b + 2 * step * elapsed)) / step)
        else:
            k = math.ceil(elapsed / a)
        k = max(0, min(k, self.segment_k))
        while k > 0 and self.stretch_duration(k - 1) >= elapsed:
            k -= 1
        while k < self.segment_k and self.stretch_duration(k) < elapsed:
            k += 1
        return k

    # --- busy time and power --------------------------------------------------------------------
    def power(self) -> float:
        return self.shape.busy_w(self.batch) if self.busy_since is not None else self.shape.idle_w
