"""A service's shared KV store: prefix entries that every replica of the service can read (Mooncake's store).

Mooncake keeps the KV cache of prefilled prompts in a pool of host memory spread over the cluster, so a
prompt whose prefix was computed on one replica is reused on another. Here the store is one LRU of
prefix-hash entries per service, bounded by its capacity in KV blocks:
- a replica writes every full hash block of a prompt when its prefill ends (write-through; the write is
  not on the request's critical path and its time is not modelled);
- a replica's lookup continues a request's leading run of cached entries into the store after its own
  accelerator and host tiers; entries found only in the store are copied into the replica at the
  store's `bandwidth` (bytes/s per replica, a NIC's worth), which delays that prefill iteration, as a
  host-tier copy does. The copy is not a flow on the scenario's fabric (not modelled).
Reading an entry makes it the most recently used; writing one that is there refreshes it. Of the entries
of one prompt, written or read together, the end of the prefix is the oldest (evicted first), as in the
replicas' own caches (engine/prefix_cache.py).
Session-keyed entries (traces without prefix hashes) stay on their replica: the store holds hash blocks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Protocol


class Subscriber(Protocol):
    version: int


class SharedKVStore:
    def __init__(self, capacity_blocks: int, bandwidth: float) -> None:
        if capacity_blocks < 1 or bandwidth <= 0:
            raise ValueError(f"a shared KV store needs capacity >= 1 block and bandwidth > 0, got "
                             f"{capacity_blocks} blocks and {bandwidth} B/s")
        self.capacity = capacity_blocks
        self.bandwidth = bandwidth
        self.entries: OrderedDict[Hashable, int] = OrderedDict()  # key -> blocks, least recently used first
        self.used = 0
        self.peak = 0
        self.evicted = 0
        self.written = 0  # entries written (new ones)
        self.caches: list[Subscriber] = []  # replicas' prefix caches: their memoised lookups see store changes

    def __contains__(self, key: Hashable) -> bool:
        return key in self.entries

    def write(self, keys: Sequence[Hashable], blocks: int) -> None:
        """Entries of `blocks` blocks each become (or stay) the most recently used; the oldest go beyond capacity."""
        if blocks > self.capacity or not keys:
            return
        entries = self.entries
        for key in reversed(keys):  # the prompt's last block first: the oldest of them, evicted first
            if key in entries:
                entries.move_to_end(key)
            else:
                entries[key] = blocks
                self.used += blocks
                self.written += 1
        while self.used > self.capacity:
            _, size = entries.popitem(last=False)
            self.used -= size
            self.evicted += 1
        self.peak = max(self.peak, self.used)
        self._changed()

    def read(self, keys: Sequence[Hashable]) -> None:
        """Entries a replica copies in: the most recently used now."""
        for key in reversed(keys):
            self.entries.move_to_end(key)
        self._changed()

    def _changed(self) -> None:
        for cache in self.caches:
            cache.version += 1
