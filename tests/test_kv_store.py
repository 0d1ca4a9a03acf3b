"""The shared KV store (paged_kv.shared_store, engine/kv_store.py): a prefix computed on one replica is
reused on another, at the cost of copying it in at the store's bandwidth; LRU within its capacity;
bad settings fail in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dcsim.engine.kv_store import SharedKVStore
from dcsim.errors import DcsimError
from tests.helpers import assert_cli_refuses
from tests.test_prefix_cache import check_conservation, jsonl, mooncake_or_skip, per_token, run, scenario, timing

BANDWIDTH = 10e9  # bytes/s


def two_replicas(tmp_path: Path, store: dict[str, Any] | None) -> dict[str, Any]:
    # 64-token hash blocks over 16-token KV blocks; round robin puts A on replica 0 and B on replica 1.
    rows = [{"t": 0, "in": 256, "out": 2, "h": [1, 2, 3, 4]},
            {"t": 50_000, "in": 256, "out": 2, "h": [1, 2, 3, "x"]}]
    requests = {"source": "trace", "path": jsonl(tmp_path, rows), "block_size": 64, "time_unit": "ms",
                "columns": {"arrival": "t", "prompt_tokens": "in", "output_tokens": "out", "prefix_hashes": "h"}}
    paged: dict[str, Any] = {"block_size": 16}
    if store is not None:
        paged["shared_store"] = store
    data = scenario(requests, paged)
    data["workload"]["inference"]["services"][0]["replicas"][0]["count"] = 2
    data["policies"] = {"balancer": "round_robin"}
    return data


def test_a_prefix_from_another_replica_is_copied_in_from_the_store(tmp_path: Path) -> None:
    alone = run(two_replicas(tmp_path, None))
    shared = run(two_replicas(tmp_path, {"capacity": "1 TB", "bandwidth": f"{BANDWIDTH:.0f} B/s"}))
    assert alone.requests["replica"].tolist() == shared.requests["replica"].tolist() == [0, 1]
    k = timing()
    first, second = shared.requests["ttft_s"].tolist()
    full = k.prefill_fixed + k.prefill_token * 256 + k.prefill_token_sq * 256**2
    assert first == pytest.approx(full, rel=1e-12) and alone.requests["ttft_s"].tolist()[1] == pytest.approx(full)
    cached = 192  # three 64-token entries: 12 KV blocks copied in at the store's bandwidth
    copy = 12 * 16 * per_token() / BANDWIDTH
    assert second == pytest.approx(full - (k.prefill_token * cached + k.prefill_token_sq * cached**2) + copy,
                                   rel=1e-9)
    assert shared.request_kv["prefill_cached"].tolist() == [0, 192]
    # The ledger of replica 1, which had never written an entry when B pinned three from the store: its
    # blocks are counted (B holds 16 blocks while it runs) and all are back once it ends.
    kv = shared.replica_kv[shared.replica_kv["replica_id"] == 1]
    assert kv["used_blocks"].max() == 16 and kv["used_blocks"].min() >= 0 and kv["used_blocks"].iloc[-1] == 0
    assert kv["cached_blocks"].iloc[-1] == 16
    section = shared.summary["inference"]["kv_cache"]
    assert section["store_blocks_read"] == 12 and section["store_entries_written"] == 5  # 1, 2, 3, 4 and x
    assert section["store_evictions"] == 0 and section["store_peak_blocks"] == 20
    assert "store_blocks_read" not in alone.summary["inference"]["kv_cache"]


def test_a_full_store_drops_its_least_recently_used_entries(tmp_path: Path) -> None:
    shared = run(two_replicas(tmp_path, {"capacity": f"{8 * 16 * per_token():.0f} B"}))  # 2 entries of 4 blocks
    # A writes 1..4 last one first (4, 3, 2, 1): 4 and 3 go, the head 1, 2 stays, so B (on the other replica)
    # reuses 128 tokens. B then writes x, 3 (new) and refreshes 2, 1: x and 3 go, leaving 2, 1 again.
    assert shared.request_kv["prefill_cached"].tolist() == [0, 128]
    assert shared.summary["inference"]["kv_cache"]["store_evictions"] == 2 + 2


def test_store_lru_order_and_reads_refresh() -> None:
    class Cache:
        version = 0

    store = SharedKVStore(3, 1e9)
    cache = Cache()
    store.caches.append(cache)
    store.write(["a", "b", "c"], 1)
    store.read(["a"])  # a is now the most recently used
    store.write(["d"], 1)
    # a prompt's entries are written last one first (c is the oldest), so its head outlives its end
    assert list(store.entries) == ["b", "a", "d"] and store.evicted == 1 and store.peak == 3
    assert cache.version == 3  # every change tells the replicas' caches, so memoised lookups are redone
    store.write(["e", "f"], 2)  # f, then e; then the oldest go until the store fits: f too
    assert list(store.entries) == ["e"] and store.used == 2 and store.evicted == 5
    store.write(["g"], 4)  # an entry larger than the store is not kept (and nothing is evicted for it)
    assert list(store.entries) == ["e"] and cache.version == 4
    with pytest.raises(ValueError, match="capacity >= 1 block"):
        SharedKVStore(0, 1e9)


@pytest.mark.parametrize(("store", "paged", "message"), [
    ({"capacity": "1 KB"}, {}, r"paged_kv\.shared_store\.capacity: 1000 bytes hold no KV block"),
    ({"capacity": "1 TB"}, {"prefix_caching": False}, r"shared_store: .* needs prefix_caching: true"),
    ({"capacity": "-1 TB"}, {}, r"capacity"),
])
def test_bad_stores_fail_in_one_line(tmp_path: Path, store: dict[str, Any], paged: dict[str, Any],
                                     message: str) -> None:
    data = two_replicas(tmp_path, store)
    data["workload"]["inference"]["services"][0]["paged_kv"].update(paged)
    with pytest.raises(DcsimError, match=message):
        run(data)


def test_validate_and_run_exit_2_and_write_nothing(tmp_path: Path) -> None:
    data = two_replicas(tmp_path, {"capacity": "1 KB"})
    assert_cli_refuses(tmp_path, data, "shared_store.capacity")


@pytest.mark.parametrize("preemption", ["recompute", "swap"])
def test_mooncake_with_a_store_conserves_tokens_and_blocks(preemption: str) -> None:
    requests = {"source": "trace", "path": str(mooncake_or_skip()), "format": "mooncake", "limit": 400,
                "rate_scale": 4}
    paged = {"preemption": preemption, "watermark": 0, "host_cache": "20 GB",
             "shared_store": {"capacity": "60 GB", "bandwidth": "50 GB/s"}}  # small enough to evict
    data = scenario(requests, paged, kv_tokens=60_000, model="Llama-3.1-8B", tp=1, max_batch=64)
    data["workload"]["inference"]["services"][0]["replicas"][0]["count"] = 3
    result = run(data)
    check_conservation(result)
    section = result.summary["inference"]["kv_cache"]
    assert section["store_blocks_read"] > 0 and section["store_evictions"] > 0
    blocks = result.replica_kv
    assert (blocks["used_blocks"] >= 0).all() and (blocks["cached_blocks"] >= 0).all()
    last = blocks.groupby("replica_id")["used_blocks"].last()
    assert (last == 0).all()  # every request ended: nothing is held
