"""One replica's prefix cache: KV entries keyed by prefix id, reference counts, LRU eviction, host tier.

An entry is a run of KV blocks that later requests may reuse: one trace prefix hash (block_size
tokens of the prompt), or a session's whole history (engine/kv_blocks.py decides which). Entries held
by a running request are pinned; the others wait in least-recently-used order and are evicted oldest
first when the accelerator needs room (of entries freed together, the end of the prefix first, as vLLM
and SGLang do, so that a shared head outlives its tails), into the host tier when there is one (itself LRU, bounded by
its capacity), otherwise dropped. A request reuses the longest run of leading entries it finds: first
on the accelerator, then continuing in host memory (those are copied back over the host link), then in
the service's shared store when it has one (engine/kv_store.py; copied in at the store's bandwidth).

Bookkeeping is per entry and runs in CPython's C loops where it can (a request has ~30 entries, and
every dict operation per entry costs ~0.1 us): pinned entries live in `refs` (entry -> holders),
unpinned ones only in the LRU `free` (a plain dict: insertion order is recency, since an entry leaves
it when pinned and comes back at the end), so a release moves entries from one to the other in two
C-level calls and an eviction takes the oldest with one scan and one C-level loop (the scan also
passes slots of deleted entries, which CPython drops whenever the dict grows, so it stays short);
entries of the common size (`unit` blocks: one trace hash block) store no size, only the others
(session histories) do, in `size`.

Counts are in KV blocks; this module never decides whether something fits (the replica's ledger does).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable, Sequence
from itertools import islice, repeat

from dcsim.engine.kv_store import SharedKVStore


class PrefixCache:
    def __init__(self, host_blocks: int = 0, store: SharedKVStore | None = None) -> None:
        self.store = store  # shared by the service's replicas; it bumps `version` when it changes
        self.refs: dict[Hashable, int] = {}  # pinned accelerator entries -> requests holding them (>= 1)
        self.free: dict[Hashable, None] = {}  # accelerator entries held by nobody, LRU first (insertion order)
        self.host: OrderedDict[Hashable, None] = OrderedDict()  # host-tier entries, LRU first
        self.unit = 0  # blocks of an entry not in `size` (set by the first add_pinned)
        self.size: dict[Hashable, int] = {}  # blocks of entries whose size is not `unit`
        self.host_capacity = host_blocks
        self.referenced_blocks = 0  # blocks of pinned accelerator entries
        self.free_blocks = 0  # blocks of unpinned accelerator entries (evictable)
        self.host_used = 0
        self.evicted = 0  # entries evicted from the accelerator
        self.host_evicted = 0  # entries dropped from the host tier
        self.version = 0  # bumps on every change, so a lookup's answer can be reused until then

    def blocks_of(self, key: Hashable) -> int:
        return self.size.get(key, self.unit)

    def on_accelerator(self, key: Hashable) -> bool:
        return key in self.refs or key in self.free

    def lookup(self, keys: Sequence[Hashable]) -> tuple[int, int, int, int]:
        """Leading entries found, on the accelerator, in host memory or in the shared store: (how many, how
        many of them in host memory, blocks of those some request already pins, how many only in the
        store). Reads only: LRU order is untouched."""
        refs, free, host, size, unit = self.refs, self.free, self.host, self.size, self.unit
        stored = self.store.entries if self.store is not None else None
        found = in_host = pinned = in_store = 0
        for key in keys:
            if key in refs:
                pinned += size.get(key, unit)
            elif key not in free:
                if key in host:
                    in_host += 1
                elif stored is not None and key in stored:
                    in_store += 1
                else:
                    break
            found += 1
        return found, in_host, pinned, in_store

    def acquire(self, keys: Sequence[Hashable], found: int, unit: int = 0) -> int:
        """Pin the first `found` entries (host ones move to the accelerator, store ones are copied); their blocks.
        `unit`: blocks of a hash entry, which a replica that never wrote one learns here (from the store)."""
        self.version += 1
        if not self.unit:
            self.unit = unit
        refs, free, size, unit = self.refs, self.free, self.size, self.unit
        blocks = 0
        from_store: list[Hashable] = []
        for key in keys[:found]:
            blocks_of = size.get(key, unit)
            count = refs.get(key)
            if count is not None:
                refs[key] = count + 1
            else:
                if key in free:
                    del free[key]
                    self.free_blocks -= blocks_of
                elif key in self.host:  # in host memory: copied back
                    del self.host[key]
                    self.host_used -= blocks_of
                else:  # in the shared store: copied in (the store keeps its copy)
                    from_store.append(key)
                refs[key] = 1
                self.referenced_blocks += blocks_of
            blocks += blocks_of
        if from_store:
            assert self.store is not None
            self.store.read(from_store)
        return blocks

    def release(self, keys: Sequence[Hashable]) -> None:
        """Unpin; an entry nobody holds becomes the most recently used evictable one. `keys` run from the
        prompt's start; they are queued last one first, so of entries freed together the end of the
        longest prefix is evicted first (vLLM's rule: a shared head outlives the tails behind it)."""
        self.version += 1
        refs, free = self.refs, self.free
        keys = keys[::-1]
        counts = list(map(refs.pop, keys, repeat(0)))  # all popped at once (C level): 0 for a key met twice
        if counts.count(1) == len(counts):  # the usual case, one holder each: C-level loops
            free.update(dict.fromkeys(keys))
            unpinned: Sequence[Hashable] = keys
        else:  # some other request holds one: put the counts back, then one key at a time
            refs.update((key, count) for key, count in zip(keys, counts, strict=True) if count)
            unpinned = []
            for key in keys:
                count = refs[key] - 1
                if count:
                    refs[key] = count
                else:
                    del refs[key]
                    free[key] = None
                    unpinned.append(key)
        size = self.size
        freed = sum(map(size.get, unpinned, [self.unit] * len(unpinned))) if size else len(unpinned) * self.unit
        self.referenced_blocks -= freed
        self.free_blocks += freed

    def add_pinned(self, keys: Sequence[Hashable], blocks: int) -> int:
        """New pinned entries of `blocks` blocks each, in order, up to the first key already on the
        accelerator; how many were added."""
        self.version += 1
        if not self.unit:
            self.unit = blocks
        refs, free, size, host = self.refs, self.free, self.size, self.host
        new = dict.fromkeys(keys, 1)
        if (not host and blocks == self.unit and len(new) == len(keys) and new.keys().isdisjoint(refs.keys())
                and new.keys().isdisjoint(free.keys())):  # the usual case, all new and distinct: C-level
            refs.update(new)
            self.referenced_blocks += len(keys) * blocks
            return len(keys)
        added = 0
        for key in keys:
            if key in refs or key in free:
                break
            if host and key in host:
                del host[key]
                self.host_used -= size.pop(key, self.unit)
            if blocks != self.unit:
                size[key] = blocks
            refs[key] = 1
            added += 1
        self.referenced_blocks += added * blocks
        return added

    def add(self, key: Hashable, blocks: int, pinned: bool) -> bool:
        """A new accelerator entry (pinned by its writer, or evictable at once); False if it is there already."""
        self.version += 1
        if key in self.refs or key in self.free:
            return False
        if key in self.host:
            del self.host[key]
            self.host_used -= self.size.pop(key, self.unit)
        if blocks != self.unit:
            self.size[key] = blocks
        if pinned:
            self.refs[key] = 1
            self.referenced_blocks += blocks
        else:
            self.free[key] = None
            self.free_blocks += blocks
        return True

    def drop(self, key: Hashable) -> None:
        """Forget an unpinned accelerator entry (it is being replaced)."""
        self.version += 1
        del self.free[key]
        self.free_blocks -= self.size.pop(key, self.unit)

    def evict(self, blocks: int) -> int:
        """Evict least recently used unpinned entries until at least `blocks` blocks are freed; blocks freed."""
        self.version += 1
        free, size, unit = self.free, self.size, self.unit
        if not size and unit:  # every entry has `unit` blocks: just enough of the oldest
            victims = list(islice(free, -(-blocks // unit)))
            freed = len(victims) * unit
        else:
            victims, freed = [], 0
            for key in free:
                if freed >= blocks:
                    break
                victims.append(key)
                freed += size.get(key, unit)
        deque(map(free.pop, victims), 0)
        if not self.host_capacity:
            if size:
                deque(map(size.pop, victims, [None] * len(victims)), 0)
        else:
            host = self.host
            for key in victims:
                blocks_of = size.get(key, unit)
                if self.host_capacity >= blocks_of:
                    host[key] = None
                    self.host_used += blocks_of
                    while self.host_used > self.host_capacity:
                        old, _ = host.popitem(last=False)
                        self.host_used -= size.pop(old, unit)
                        self.host_evicted += 1
                else:
                    size.pop(key, None)
        self.free_blocks -= freed
        self.evicted += len(victims)
        return freed
