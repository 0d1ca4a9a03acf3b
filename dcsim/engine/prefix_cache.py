"""One replica's prefix cache: KV entries keyed by prefix id, reference counts, LRU eviction, host tier.

An entry is a run of KV blocks that later requests may reuse: one trace prefix hash (block_size
tokens of the prompt), or a session's whole history (engine/kv_blocks.py decides which). Entries held
by a running request are pinned; the others wait in least-recently-used order and are evicted oldest
first when the accelerator needs room, into the host tier when there is one (itself LRU, bounded by
its capacity), otherwise dropped. A request reuses the longest run of leading entries it finds: first
on the accelerator, then continuing in host memory (those are copied back over the host link).

Counts are in KV blocks; this module never decides whether something fits (the replica's ledger does).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence


class PrefixCache:
    def __init__(self, host_blocks: int = 0) -> None:
        self.refs: dict[Hashable, int] = {}  # on the accelerator: entry -> requests holding it
        self.size: dict[Hashable, int] = {}  # entry -> blocks (accelerator and host entries)
        self.free: OrderedDict[Hashable, None] = OrderedDict()  # accelerator entries held by nobody, LRU first
        self.host: OrderedDict[Hashable, None] = OrderedDict()  # host-tier entries, LRU first
        self.host_capacity = host_blocks
        self.referenced_blocks = 0  # blocks of pinned accelerator entries
        self.free_blocks = 0  # blocks of unpinned accelerator entries (evictable)
        self.host_used = 0
        self.evicted = 0  # entries evicted from the accelerator
        self.host_evicted = 0  # entries dropped from the host tier
        self.version = 0  # bumps on every change, so a lookup's answer can be reused until then

    def lookup(self, keys: Sequence[Hashable]) -> tuple[int, int, int]:
        """Leading entries found, on the accelerator or in host memory: (how many, how many of them in
        host memory, blocks of those some request already pins). Reads only: LRU order is untouched."""
        refs, host, size = self.refs, self.host, self.size
        found = in_host = pinned = 0
        for key in keys:
            count = refs.get(key)
            if count is None:
                if key not in host:
                    break
                in_host += 1
            elif count:
                pinned += size[key]
            found += 1
        return found, in_host, pinned

    def acquire(self, keys: Sequence[Hashable], found: int) -> int:
        """Pin the first `found` entries (host ones move to the accelerator); their blocks."""
        self.version += 1
        refs, size = self.refs, self.size
        blocks = 0
        for key in keys[:found]:
            count = refs.get(key)
            if count is None:  # in host memory: copied back
                del self.host[key]
                self.host_used -= size[key]
                count = 0
            elif count == 0:
                del self.free[key]
                self.free_blocks -= size[key]
            if count == 0:
                self.referenced_blocks += size[key]
            refs[key] = count + 1
            blocks += size[key]
        return blocks

    def release(self, keys: Sequence[Hashable]) -> None:
        """Unpin; an entry nobody holds becomes the most recently used evictable one."""
        self.version += 1
        refs, free, size = self.refs, self.free, self.size
        if max(map(refs.__getitem__, keys), default=0) == 1:  # the usual case, one holder each: C-level loops
            refs.update(dict.fromkeys(keys, 0))
            free.update(dict.fromkeys(keys))
            freed = sum(map(size.__getitem__, keys))
        else:
            freed = 0
            for key in keys:
                count = refs[key] - 1
                refs[key] = count
                if count == 0:
                    free[key] = None
                    freed += size[key]
        self.referenced_blocks -= freed
        self.free_blocks += freed

    def add_pinned(self, keys: Sequence[Hashable], blocks: int) -> int:
        """New pinned entries of `blocks` blocks each, in order, up to the first key already on the
        accelerator; how many were added."""
        self.version += 1
        refs, size, host = self.refs, self.size, self.host
        if not host and not any(map(refs.__contains__, keys)) and len(set(keys)) == len(keys):  # usual: all new
            refs.update(dict.fromkeys(keys, 1))
            size.update(dict.fromkeys(keys, blocks))
            self.referenced_blocks += len(keys) * blocks
            return len(keys)
        added = 0
        for key in keys:
            if key in refs:
                break
            if host and key in host:
                del host[key]
                self.host_used -= size[key]
            size[key] = blocks
            refs[key] = 1
            added += 1
        self.referenced_blocks += added * blocks
        return added

    def add(self, key: Hashable, blocks: int, pinned: bool) -> bool:
        """A new accelerator entry (pinned by its writer, or evictable at once); False if it is there already."""
        self.version += 1
        if key in self.refs:
            return False
        if key in self.host:
            del self.host[key]
            self.host_used -= self.size[key]
        self.size[key] = blocks
        if pinned:
            self.refs[key] = 1
            self.referenced_blocks += blocks
        else:
            self.refs[key] = 0
            self.free[key] = None
            self.free_blocks += blocks
        return True

    def drop(self, key: Hashable) -> None:
        """Forget an unpinned accelerator entry (it is being replaced)."""
        self.version += 1
        del self.refs[key]
        del self.free[key]
        self.free_blocks -= self.size.pop(key)

    def evict(self, blocks: int) -> int:
        """Evict least recently used unpinned entries until at least `blocks` blocks are freed; blocks freed."""
        self.version += 1
        free, refs, size = self.free, self.refs, self.size
        pop = free.popitem
        freed = count = 0
        if not self.host_capacity:
            while freed < blocks and free:
                key = pop(False)[0]
                del refs[key]
                freed += size.pop(key)
                count += 1
        else:
            host = self.host
            while freed < blocks and free:
                key = pop(False)[0]
                del refs[key]
                blocks_of = size[key]
                freed += blocks_of
                count += 1
                if self.host_capacity >= blocks_of:
                    host[key] = None
                    self.host_used += blocks_of
                    while self.host_used > self.host_capacity:
                        old, _ = host.popitem(last=False)
                        self.host_used -= size.pop(old)
                        self.host_evicted += 1
                else:
                    del size[key]
        self.free_blocks -= freed
        self.evicted += count
        return freed
