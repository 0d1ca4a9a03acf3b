"""A replica whose KV cache is paged: blocks, a free-block watermark, swap or recompute, prefix caching.

Ledger (in blocks of B tokens; C = capacity): a decoding request holding t tokens uses ceil(t / B)
blocks; a prefilling one reserves ceil(need / B) at admission. Blocks that belong to prefix-cache
entries (engine/prefix_cache.py) are counted once however many requests share them:
held = sum of ceil(t / B) over decoding requests - their shared blocks + prefilling requests' own
blocks + blocks of pinned entries. Unpinned entries are the cache proper; held + cached <= C always:
cached entries are evicted (LRU) before anything that needs room would exceed C.

The closed-form decode clock survives blocks: a decoding request that joined at iteration j with c
tokens holds q + I tokens at iteration I, q = c - j constant, so only q mod B matters for rounding.
A histogram of q mod B gives sum ceil((q + I) / B) in O(B), and how many decode iterations fit in O(B).

Admission leaves `watermark` x C blocks free for running requests (vLLM's rule); a decode iteration
that does not fit preempts the newest decoding request, which is recomputed (its prefix blocks may
still be cached) or swapped: its KV (t tokens x the model's KV bytes per token) is copied to host
memory over the host link, and back when it is admitted again; both copies delay that replica's
iteration by bytes / bandwidth (the copy is not overlapped with compute: an upper bound on its cost).
With a bounded swap space (whole blocks per replica), a request whose KV does not fit in what is left
is recomputed instead, and counted (vLLM stops with an error there; docs/inference.md says why not).
Prefix entries: with trace hashes, one entry per full hash block of the prompt, added when its prefill
ends (so running requests share them); without hashes, one entry per session key holding the
session's history (prompt + output), added when the request ends, for the session's next turn.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import cast

import simpy

from dcsim.engine.kv_store import SharedKVStore
from dcsim.engine.prefix_cache import PrefixCache
from dcsim.engine.replica import Replica, ReplicaShape
from dcsim.model import Request
from dcsim.policies.serving_base import RequestView


@dataclass(frozen=True)
class PagedSpec:
    block_size: int = 16
    watermark: float = 0.01
    swap: bool = False  # preemption copies KV to host memory instead of recomputing it
    host_link: float = 25e9  # bytes/s between host and accelerator memory
    prefix_caching: bool = True
    host_cache_bytes: float = 0.0
    swap_space_bytes: float = math.inf  # host memory for swapped KV; a preemption that does not fit recomputes
    kv_bytes_per_token: float = 0.0
    store: SharedKVStore | None = None  # the service's shared KV store (engine/kv_store.py), one object for all


class PagedReplica(Replica):
    paged = True
    __slots__ = ("_decode_now", "_sampled_used", "block", "blocks", "cache", "decode_shared",  # see Replica
                 "host_hit_blocks", "phase", "prefill_own", "samples", "seconds_per_token", "store_hit_blocks",
                 "store_seconds_per_token", "swap", "swap_blocks_free", "swap_blocks_peak", "swap_capacity_blocks",
                 "swap_ins", "swap_outs", "swap_refused", "swap_seconds", "watermark_blocks")

    def __init__(self, env: simpy.Environment, replica_id: int, service: int, service_name: str,
                 shape: ReplicaShape, node_id: int, node_name: str) -> None:
        super().__init__(env, replica_id, service, service_name, shape, node_id, node_name)
        spec = shape.paged
        assert isinstance(spec, PagedSpec)
        self.block = block = spec.block_size
        self.blocks = shape.kv_capacity // block
        self.kv_capacity = self.blocks * block  # whole blocks only
        self.watermark_blocks = math.floor(spec.watermark * self.blocks)
        self.swap = spec.swap
        # None: unbounded (the default); else blocks of swapped KV the replica's host memory holds
        self.swap_capacity_blocks = (None if spec.swap_space_bytes == math.inf
                                     else int(spec.swap_space_bytes // (spec.kv_bytes_per_token * block)))
        self.swap_blocks_free = self.swap_capacity_blocks
        self.swap_blocks_peak = 0  # most blocks swapped out at once (counted only under a bound)
        self.swap_refused = 0  # preemptions recomputed because their KV did not fit in swap_space
        self.seconds_per_token = spec.kv_bytes_per_token / spec.host_link
        host_blocks = int(spec.host_cache_bytes // (spec.kv_bytes_per_token * block)) if spec.host_cache_bytes else 0
        self.cache = PrefixCache(host_blocks, spec.store) if spec.prefix_caching else None
        store = spec.store if self.cache is not None else None
        if store is not None:
            store.caches.append(self.cache)  # type: ignore[arg-type]
        self.store_seconds_per_token = spec.kv_bytes_per_token / store.bandwidth if store is not None else 0.0
        self.store_hit_blocks = 0
        self.phase = [0] * block  # decoding requests by (tokens - iteration) mod B
        self._decode_now = 0  # blocks of the decoding requests at the current iteration
        self._sampled_used = 0
        self.prefill_own = 0  # blocks prefilling requests hold outside cache entries
        self.decode_shared = 0  # blocks of cache entries inside decoding requests' contexts
        self.swap_outs = 0
        self.swap_ins = 0
        self.swap_seconds = 0.0
        self.host_hit_blocks = 0
        self.samples: list[tuple[float, int, int]] = []  # (time, held blocks, cached blocks)

    @property
    def evictions(self) -> int:
        return self.cache.evicted if self.cache is not None else 0

    # --- the ledger -----------------------------------------------------------------------------
    def _decode_blocks(self, iteration: int) -> int:
        """sum over decoding requests of ceil((q + iteration) / B), for iteration >= the current one."""
        k = iteration - self.iteration
        if k == 0 or not self.members:
            return self._decode_now if self.members else 0
        block, phase = self.block, self.phase
        blocks = self._decode_now + k // block * len(self.members)
        # Iteration start + s adds a block for each request whose t is a multiple of B: phase[(-start - s) % B]
        # for s < k % B, a run of indices going down from (-start) % B (wrapping at 0): one or two slices.
        top, rest = (-self.iteration) % block, k % block
        if rest <= top + 1:
            return blocks + sum(phase[top + 1 - rest:top + 1])
        return blocks + sum(phase[:top + 1]) + sum(phase[block - (rest - top - 1):])

    def advance(self, iterations: int) -> list[Request]:
        self._decode_now = self._decode_blocks(self.iteration + iterations)  # before anyone leaves
        return super().advance(iterations)

    def _pinned(self) -> int:
        return self.cache.referenced_blocks if self.cache is not None else 0

    def held_blocks(self, iteration: int | None = None) -> int:
        """Blocks of running requests (shared entries once) at a decode iteration (default: now)."""
        if iteration is None or iteration == self.iteration:
            decode = self._decode_now if self.members else 0
        else:
            decode = self._decode_blocks(iteration)
        cache = self.cache
        return decode - self.decode_shared + self.prefill_own + (cache.referenced_blocks if cache is not None else 0)

    def cached_blocks(self) -> int:
        return self.cache.free_blocks if self.cache is not None else 0

    @property
    def kv_used(self) -> int:
        return self.held_blocks() * self.block

    @property
    def kv_free(self) -> int:
        """Tokens admission may still take: whole free blocks (evictable ones count) above the watermark."""
        return (self.blocks - self.held_blocks() - self.watermark_blocks) * self.block

    def kv_used_at(self, now: float) -> int:
        """As Replica.kv_used_at, in whole blocks; also noted for record_sample, which follows it."""
        elapsed = now - self.segment_start
        if self.segment_k == 0 or not self.members or elapsed <= 0:  # (no iteration done: the stretch starts)
            cache = self.cache  # held_blocks() inlined: this runs at every replica event
            used = ((self._decode_now if self.members else 0) - self.decode_shared + self.prefill_own
                    + (cache.referenced_blocks if cache is not None else 0))
        else:
            done = self.iterations_by(elapsed)
            if done > 0 and self.stretch_duration(done) > elapsed:
                done -= 1
            used = self.held_blocks(self.iteration + done)
        self._sampled_used = used
        return used * self.block

    def needs_preemption(self) -> bool:
        if not self.members:
            return False
        # one more iteration adds a block for every request whose token count is a multiple of B
        grow = self.phase[(-self.iteration) % self.block]
        cache = self.cache  # held_blocks() inlined (members is not empty)
        held = (self._decode_now - self.decode_shared + self.prefill_own
                + (cache.referenced_blocks if cache is not None else 0))
        return held + grow > self.blocks

    def decode_room(self, cap: int) -> int:
        """Most decode iterations k <= cap the decoding set can run before its blocks exceed capacity."""
        n = len(self.members)
        limit = self.blocks + self.decode_shared - self.prefill_own - self._pinned()  # for the decode blocks
        # the usual case: the next completion comes first (an upper bound on the growth shows it at once)
        if self._decode_now + n * -(-cap // self.block) <= limit or self._decode_blocks(self.iteration + cap) <= limit:
            return cap
        block, phase, start = self.block, self.phase, self.iteration
        blocks = self._decode_blocks(start)
        best = 0
        for s in range(block):  # blocks at start + s; each further B iterations add exactly n blocks
            if blocks <= limit:
                best = max(best, (limit - blocks) // n * block + s)
            blocks += phase[(-(start + s)) % block]  # requests whose t is a multiple of B need a block
        return min(best, cap)

    def reserve(self, iterations: int) -> None:
        """Evict cached entries so that `iterations` more decode iterations fit beside the cache."""
        cache = self.cache
        if cache is not None and cache.free_blocks:
            members = len(self.members)
            growth = members * -(-iterations // self.block)  # at most this many new blocks
            held = ((self._decode_now if members else 0) - self.decode_shared + self.prefill_own
                    + cache.referenced_blocks)  # held_blocks() inlined
            if held + growth + cache.free_blocks <= self.blocks:
                return
            over = self.held_blocks(self.iteration + iterations) + cache.free_blocks - self.blocks
            if over > 0:
                cache.evict(over)

    def record_sample(self) -> None:
        """Blocks in use (as kv_used_at just found them) and cached, now."""
        cache = self.cache
        self.samples.append((self.env.now, self._sampled_used, cache.free_blocks if cache is not None else 0))

    # --- prefix entries -------------------------------------------------------------------------
    def _keys(self, request: Request) -> tuple[list[Hashable], int]:
        """The request's prefix entries to look up, and blocks per entry (0 for a session entry)."""
        if request.prefix is not None:
            keys = request.kv_keys
            if keys is None:  # made once per request (routing asks every replica), dropped when it ends
                keys = request.kv_keys = request.prefix[:request.prompt_tokens // request.prefix_block].tolist()
            return keys, request.prefix_block // self.block
        return [("session", request.key)], 0

    def _lookup(self, request: Request) -> tuple[list[Hashable], int, int, int, int, int]:
        """(keys, entries found, of them in host memory, pinned blocks among them, tokens reusable, of the
        entries found those only in the shared store)."""
        cache = self.cache
        assert cache is not None
        memo = request.kv_memo  # the same answer until the cache or the request's need changes
        need = request.prompt_tokens + request.generated  # request.need
        if memo is not None and memo[0] is cache and memo[1] == cache.version and memo[2] == need:
            answer: tuple[list[Hashable], int, int, int, int, int] = memo[3]
            return answer
        keys, per_entry = self._keys(request)
        found, in_host, pinned, in_store = cache.lookup(keys)
        answer = keys, 0, 0, 0, 0, 0
        if found:
            if per_entry:
                answer = keys, found, in_host, pinned, min(found * per_entry * self.block, request.need - 1), in_store
            else:  # a session entry: the history; a prompt shorter than it does not continue it
                tokens = cache.blocks_of(keys[0]) * self.block
                if tokens <= request.prompt_tokens:
                    answer = keys, found, in_host, pinned, min(tokens, request.need - 1), 0
        request.kv_memo = (cache, cache.version, need, answer)
        return answer

    def prefix_hit(self, view: RequestView) -> int:
        request = cast(Request, view)
        if request.swapped:
            return request.need - 1
        if self.cache is None:
            return 0
        return self._lookup(request)[4]

    def kv_cost(self, view: RequestView) -> int:
        """Tokens (whole blocks) admission takes from kv_free: all its blocks but those already pinned."""
        request = cast(Request, view)
        blocks = -(-(request.prompt_tokens + request.generated) // self.block)  # request.need
        if self.cache is not None and not request.swapped:
            blocks -= self._lookup(request)[3]
        return blocks * self.block

    # --- batch changes --------------------------------------------------------------------------
    def admit(self, request: Request, seq: int) -> None:
        first = request.admitted is None
        super().admit(request, seq)
        self.reserved_prefill -= request.need  # the base ledger's reservation is not used here
        blocks = -(-request.need // self.block)
        if request.swapped:  # its KV comes back from host memory; the last token is recomputed
            request.swapped = False
            tokens = request.need - 1
            seconds = tokens * self.seconds_per_token
            self.transfer_pending += seconds
            request.swap_time += seconds
            self.swap_seconds += seconds
            self.swap_ins += 1
            request.prefilled = tokens
            request.prefill_requested += 1
            if self.swap_blocks_free is not None:
                self.swap_blocks_free += -(-tokens // self.block)
        elif self.cache is not None:
            keys, found, in_host, _, tokens, in_store = self._lookup(request)
            if found:
                shared = self.cache.acquire(keys, found, request.prefix_block // self.block)  # (0: a session entry)
                request.kv_refs = keys[:found]
                request.kv_shared = shared
                if in_host:
                    moved = shared if request.prefix is None else in_host * (request.prefix_block // self.block)
                    self.host_hit_blocks += moved
                    self.transfer_pending += moved * self.block * self.seconds_per_token
                if in_store:  # hash entries only (engine/kv_store.py)
                    moved = in_store * (request.prefix_block // self.block)
                    self.store_hit_blocks += moved
                    self.transfer_pending += moved * self.block * self.store_seconds_per_token
                blocks -= shared
            request.prefilled = tokens
            request.cached_tokens += tokens
            request.prefill_requested += request.need
            if first:
                request.first_cached = tokens
        else:
            request.prefill_requested += request.need
        self.prefill_own += blocks
        self.reserve(0)

    def prefill_done(self, request: Request) -> None:
        """Its prompt's hash blocks become cache entries it pins (those not cached already)."""
        own = -(-request.need // self.block) - request.kv_shared
        self.prefill_own -= own
        if self.cache is None or request.prefix is None:
            return
        keys, per_entry = self._keys(request)
        refs = request.kv_refs
        if not refs:  # the usual case: nothing was cached
            added = self.cache.add_pinned(keys, per_entry)  # stops where another request wrote one
            if added:
                request.kv_refs = keys if added == len(keys) else keys[:added]
        else:
            added = self.cache.add_pinned(keys[len(refs):], per_entry)
            if added:
                request.kv_refs = refs + keys[len(refs):len(refs) + added]
        request.kv_shared += added * per_entry
        store = self.cache.store
        if store is not None:  # write-through: every replica of the service may now reuse the prompt's blocks
            store.write(keys, per_entry)

    def can_join(self, request: Request) -> bool:
        """As admission: its context's whole blocks plus a token per decoding request and itself fit in
        kv_free (free and evictable blocks above the watermark)."""
        blocks = -(-(request.prompt_tokens + request.generated - 1) // self.block)
        return blocks * self.block + self.decoding + 1 <= self.kv_free

    def join_decoding(self, request: Request) -> None:
        """Its transferred KV takes whole blocks of its own; cached entries make room if they must."""
        self.start_decoding(request)
        self.reserve(0)

    def start_decoding(self, request: Request) -> None:
        super().start_decoding(request)
        tokens = request.prompt_tokens + request.generated - 1
        self.phase[(tokens - self.iteration) % self.block] += 1
        self._decode_now += -(-tokens // self.block)
        self.decode_shared += request.kv_shared

    def _leave_decoding(self, request: Request) -> None:
        tokens = request.prompt_tokens + request.generated - 1  # held at the current iteration
        super()._leave_decoding(request)
        self.phase[(tokens - self.iteration) % self.block] -= 1
        self._decode_now -= -(-tokens // self.block)
        self.decode_shared -= request.kv_shared

    def request_done(self, request: Request) -> None:
        """It finished here, or (a prefill replica) handed its KV to a decode replica: unpin its entries;
        in session mode the history held here (prompt and the tokens generated here but the last, whose
        KV is never written) becomes the session's entry."""
        self._unpin(request)
        request.kv_keys = None
        request.kv_memo = None
        if self.cache is not None and request.prefix is None:
            key: Hashable = ("session", request.key)
            history = (request.prompt_tokens + request.generated - 1) // self.block
            if history and key not in self.cache.refs:  # an entry nobody holds is replaced by the newer history
                if key in self.cache.free:
                    self.cache.drop(key)
                self.cache.add(key, history, pinned=False)

    def _unpin(self, request: Request) -> None:
        if request.kv_refs:
            assert self.cache is not None
            self.cache.release(request.kv_refs)
        request.kv_refs = None
        request.kv_shared = 0

    def preempt_newest(self) -> Request:
        request = super().preempt_newest()
        self._unpin(request)
        if self.swap:
            tokens = request.prompt_tokens + request.generated - 1
            if self.swap_blocks_free is not None:  # bounded swap space: recompute what does not fit
                blocks = -(-tokens // self.block)
                if blocks > self.swap_blocks_free:
                    self.swap_refused += 1
                    return request
                self.swap_blocks_free -= blocks
                assert self.swap_capacity_blocks is not None
                self.swap_blocks_peak = max(self.swap_blocks_peak, self.swap_capacity_blocks - self.swap_blocks_free)
            seconds = tokens * self.seconds_per_token
            self.transfer_pending += seconds
            request.swap_time += seconds
            request.swaps += 1
            self.swap_seconds += seconds
            self.swap_outs += 1
            request.swapped = True
        return request


def admissible_tokens(shape: ReplicaShape) -> int:
    """Most prompt + output tokens one request may have on an empty replica of this shape."""
    spec = shape.paged
    if not isinstance(spec, PagedSpec):
        return shape.kv_capacity
    blocks = shape.kv_capacity // spec.block_size
    return (blocks - math.floor(spec.watermark * blocks)) * spec.block_size


def new_replica(env: simpy.Environment, replica_id: int, service: int, service_name: str, shape: ReplicaShape,
                node_id: int, node_name: str) -> Replica:
    """A paged replica when the shape asks for one, else the token-granular one."""
    kind = PagedReplica if isinstance(shape.paged, PagedSpec) else Replica
    return kind(env, replica_id, service, service_name, shape, node_id, node_name)
