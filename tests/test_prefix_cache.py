"""Paged KV and prefix caching against hand-computed timelines, the LRU order, conservation, and the
Mooncake trace's own share of repeated prefix blocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dcsim
from dcsim.calibration import load_calibration
from dcsim.calibration.inference import kv_bytes_per_token
from dcsim.catalog import load_catalog
from dcsim.engine.prefix_cache import PrefixCache
from dcsim.errors import PolicyError
from dcsim.results import RunResult
from dcsim.scenario import scenario_from_dict

MODEL, ACCELERATOR, TP = "Llama-2-70B", "H100", 4
CONTEXT = 131_072  # Llama-3.1-8B
MOONCAKE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mooncake-synthetic" / "synthetic_trace.jsonl"


def timing() -> Any:
    return load_calibration().inference.iteration_constants(load_catalog().model(MODEL), ACCELERATOR, TP)


def per_token() -> float:
    return kv_bytes_per_token(load_catalog().model(MODEL))


def jsonl(tmp_path: Path, rows: list[dict[str, Any]]) -> str:
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def scenario(requests: dict[str, Any], paged: dict[str, Any] | None, kv_tokens: int | None = None,
             model: str = MODEL, tp: int = TP, **service: Any) -> dict[str, Any]:
    svc: dict[str, Any] = {"name": "chat", "model": model,
                           "replicas": [{"accelerator": ACCELERATOR, "tensor_parallel": tp, "count": 1}],
                           "requests": requests, **service}
    if paged is not None:
        svc["paged_kv"] = paged
    if kv_tokens is not None:
        svc["kv_cache"] = f"{kv_bytes_per_token(load_catalog().model(model)) * kv_tokens:.0f}"
    return {"name": "kv-test", "seed": 3,
            "cluster": {"node_pools": [{"name": "h100", "count": 1, "accelerator": ACCELERATOR,
                                        "accelerators_per_node": 8}]},
            "workload": {"inference": {"services": [svc]}}}


def run(data: dict[str, Any]) -> RunResult:
    return dcsim.run(scenario_from_dict(data, "test.yaml"))


# --- hand-computed cases ------------------------------------------------------------------------------


def test_a_shared_prefix_cuts_the_second_ttft_by_the_cached_prefill(tmp_path: Path) -> None:
    # 64-token hash blocks over 16-token KV blocks; B shares A's first three blocks (192 tokens).
    rows = [{"t": 0, "in": 256, "out": 2, "h": [1, 2, 3, 4]},
            {"t": 50_000, "in": 256, "out": 2, "h": [1, 2, 3, "x"]}]
    requests = {"source": "trace", "path": jsonl(tmp_path, rows), "block_size": 64, "time_unit": "ms",
                "columns": {"arrival": "t", "prompt_tokens": "in", "output_tokens": "out", "prefix_hashes": "h"}}
    result = run(scenario(requests, {"block_size": 16}))
    k = timing()
    first, second = result.requests["ttft_s"].tolist()
    assert first == pytest.approx(k.prefill_fixed + k.prefill_token * 256 + k.prefill_token_sq * 256**2, rel=1e-12)
    cached = 192
    assert first - second == pytest.approx(k.prefill_token * cached + k.prefill_token_sq * cached**2, rel=1e-9)
    kv = result.request_kv
    assert kv["prefill_cached"].tolist() == [0, 192] and kv["prefill_computed"].tolist() == [256, 64]
    section = result.summary["inference"]["kv_cache"]
    assert section["token_hit_rate"] == pytest.approx(192 / 512) and section["request_hit_rate"] == 0.5


def test_without_paged_kv_the_same_trace_caches_nothing(tmp_path: Path) -> None:
    rows = [{"t": 0, "in": 256, "out": 2, "h": [1, 2, 3, 4]}, {"t": 50_000, "in": 256, "out": 2, "h": [1, 2, 3, 4]}]
    requests = {"source": "trace", "path": jsonl(tmp_path, rows), "block_size": 64, "time_unit": "ms",
                "columns": {"arrival": "t", "prompt_tokens": "in", "output_tokens": "out", "prefix_hashes": "h"}}
    result = run(scenario(requests, None))
    first, second = result.requests["ttft_s"].tolist()
    assert first == pytest.approx(second, rel=1e-12)
    assert "kv_cache" not in result.summary["inference"] and result.request_kv is None


def test_the_least_recently_used_prefix_is_evicted_first(tmp_path: Path) -> None:
    # 24 blocks of 16 tokens; each 128-token prompt is 2 entries of 4 blocks, so the running request and
    # two cached prompts fill the cache. X is used again after Y, so when W needs room Y goes (first-in
    # first-out would have dropped X); X then hits, and Y misses.
    prefixes = {"X": [1, 2], "Y": [3, 4], "Z": [5, 6], "W": [7, 8]}
    order = ["X", "Y", "X", "Z", "W", "X", "Y"]
    rows = [{"t": 10_000 * i, "in": 128, "out": 1, "h": prefixes[name]} for i, name in enumerate(order)]
    requests = {"source": "trace", "path": jsonl(tmp_path, rows), "block_size": 64, "time_unit": "ms",
                "columns": {"arrival": "t", "prompt_tokens": "in", "output_tokens": "out", "prefix_hashes": "h"}}
    result = run(scenario(requests, {"block_size": 16, "watermark": 0}, kv_tokens=384))
    assert result.request_kv["first_cached"].tolist() == [0, 0, 127, 0, 0, 127, 0]
    assert result.summary["inference"]["kv_cache"]["evictions"] == 4  # Y's two entries, then Z's two


def test_prefix_cache_lru_order_and_host_tier() -> None:
    cache = PrefixCache(host_blocks=2)
    for key in "abc":
        cache.add(key, 1, pinned=False)
    assert cache.acquire(["b"], 1) == 1
    cache.release(["b"])  # b becomes the most recently used
    assert cache.evict(2) == 2
    assert list(cache.free) == ["b"] and list(cache.host) == ["a", "c"]
    assert cache.lookup(["a", "b", "c"]) == (3, 2, 0, 0)  # a and c in host memory, b on the accelerator
    cache.add("d", 1, pinned=True)
    assert cache.evict(5) == 1  # only b is unpinned; it pushes a (oldest) out of the 2-block host tier
    assert list(cache.host) == ["c", "b"] and cache.host_evicted == 1 and list(cache.refs) == ["d"]
    assert (cache.referenced_blocks, cache.free_blocks, cache.host_used) == (1, 0, 2)


def preempting_run(tmp_path: Path, preemption: str) -> RunResult:
    # 16 blocks of 16 tokens. Two 96-token prompts decode together until each holds 128 tokens (8 blocks):
    # the next iteration needs 18 blocks, so the newer one (B) is preempted with 33 tokens generated.
    path = tmp_path / f"{preemption}.csv"
    path.write_text("arrival,prompt_tokens,output_tokens\n0,96,100\n0,96,100\n")
    paged = {"block_size": 16, "watermark": 0, "preemption": preemption, "prefix_caching": False,
             "host_link": "10 GB/s"}
    return run(scenario({"source": "trace", "path": str(path)}, paged, kv_tokens=256))


def test_swap_and_recompute_cost_what_the_copies_and_the_prefill_take(tmp_path: Path) -> None:
    recompute, swap = preempting_run(tmp_path, "recompute"), preempting_run(tmp_path, "swap")
    for result in (recompute, swap):
        assert result.requests["preemptions"].tolist() == [0, 1]
        assert result.replica_kv["used_blocks"].max() <= 16
    k = timing()
    context = 96 + 33 - 1  # KV tokens B holds when preempted; its next prefill covers need = context + 1
    need = context + 1
    copy = context * per_token() / 10e9
    assert swap.request_kv["swap_s"].tolist() == [0.0, pytest.approx(2 * copy, rel=1e-12)]
    assert swap.summary["inference"]["kv_cache"]["swaps_out"] == 1
    assert swap.summary["inference"]["kv_cache"]["swaps_in"] == 1
    # A only waits for the copy out; B swaps back in and recomputes one token instead of its whole context.
    a_delay = swap.requests["end_s"][0] - recompute.requests["end_s"][0]
    assert a_delay == pytest.approx(copy, rel=1e-9)
    recompute_prefill = k.prefill_fixed + k.prefill_token * need + k.prefill_token_sq * need**2
    swap_prefill = k.prefill_fixed + k.prefill_token + k.prefill_token_sq * (need**2 - context**2)
    b_delay = swap.requests["end_s"][1] - recompute.requests["end_s"][1]
    assert b_delay == pytest.approx(2 * copy + swap_prefill - recompute_prefill, rel=1e-9)
    assert recompute.request_kv["prefill_computed"].tolist() == [96, 96 + need]
    assert swap.request_kv["prefill_computed"].tolist() == [96, 97]


# --- conservation -------------------------------------------------------------------------------------


def mooncake_or_skip() -> Path:
    if not MOONCAKE.is_file():
        pytest.skip(f"{MOONCAKE} is absent (shared data not mounted)")
    return MOONCAKE


def check_conservation(result: RunResult) -> None:
    inference = result.summary["inference"]
    assert set(result.requests["state"]) <= {"completed", "rejected", "unfinished"}
    assert inference["completed"] + inference["dropped"] + inference["unfinished"] == inference["requests"]
    kv = result.request_kv
    assert kv["request_id"].tolist() == result.requests["request_id"].tolist()
    done = result.requests["state"].to_numpy() == "completed"
    assert done.sum() > 0
    assert (kv["prefill_cached"] + kv["prefill_computed"] == kv["prefill_requested"])[done].all()
    assert (kv["prefill_requested"][done] >= result.requests["prompt_tokens"][done]).all()
    blocks = result.replica_kv
    assert (blocks["used_blocks"] + blocks["cached_blocks"] <= blocks["capacity_blocks"]).all()
    assert inference["kv_cache"]["token_hit_rate"] > 0


@pytest.mark.parametrize("preemption", ["recompute", "swap"])
def test_mooncake_tokens_requests_and_blocks_are_conserved(preemption: str) -> None:
    path = mooncake_or_skip()
    requests = {"source": "trace", "path": str(path), "format": "mooncake", "limit": 400, "rate_scale": 4}
    paged = {"preemption": preemption, "host_cache": "200 GB", "watermark": 0}
    result = run(scenario(requests, paged, kv_tokens=60_000, model="Llama-3.1-8B", tp=1, max_batch=64))
    check_conservation(result)
    inference = result.summary["inference"]
    assert inference["dropped"] > 0 and set(inference["rejected_by_reason"]) == {"longer than the KV cache can hold"}


@pytest.mark.parametrize("preemption", ["recompute", "swap"])
def test_session_turns_preempted_and_cached_are_conserved(preemption: str) -> None:
    # No hashes: a session's next turn reuses its history. A small cache forces preemptions.
    requests = {"source": "synthetic", "count": 600, "arrival": {"process": "poisson", "rate": "20/s"},
                "prompt_tokens": {"distribution": "lognormal", "median": 600, "sigma": 0.6, "max": 6000},
                "output_tokens": {"distribution": "lognormal", "median": 200, "sigma": 0.6, "max": 1500},
                "sessions": 40}
    paged = {"preemption": preemption, "watermark": 0.02}
    result = run(scenario(requests, paged, kv_tokens=8_000, max_batch=64))
    check_conservation(result)
    inference = result.summary["inference"]
    assert inference["preemptions"] > 0
    if preemption == "swap":
        assert inference["kv_cache"]["swaps_out"] == inference["preemptions"] > 0


def test_an_unbounded_cache_hits_the_trace_share_of_repeated_prefix_blocks() -> None:
    path = mooncake_or_skip()
    # Independent count: in arrival order, a request reuses its leading full 512-token blocks seen in any
    # earlier request (at least one prompt token is always computed).
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda row: row["timestamp"])
    seen: set[int] = set()
    hit = prompt = 0
    for row in rows:
        if row["input_length"] + row["output_length"] > CONTEXT:
            continue  # beyond Llama-3.1's context: left out of the run and counted in its workload report
        full = row["hash_ids"][: row["input_length"] // 512]
        run_length = next((i for i, h in enumerate(full) if h not in seen), len(full))
        hit += min(run_length * 512, row["input_length"] - 1)
        prompt += row["input_length"]
        seen.update(full)
    expected = hit / prompt
    # One replica admitting one request at a time (so every earlier prompt is cached before the next
    # looks), a host tier far larger than the trace: nothing that was cached is ever lost.
    requests = {"source": "trace", "path": str(path), "format": "mooncake"}
    data = scenario(requests, {"host_cache": "100 TB"}, model="Llama-3.1-8B", tp=1, max_batch=1)
    section = run(data).summary["inference"]["kv_cache"]
    assert section["prefill_tokens_requested"] == prompt
    assert section["prefill_tokens_cached"] == hit
    assert section["token_hit_rate"] == pytest.approx(expected, rel=1e-9)
    assert 0.3 < expected < 0.7  # SOURCE.md: 64% of blocks repeat an earlier one (partial blocks included)
    assert np.isfinite(section["swap_s"])


@pytest.mark.parametrize("preemption", ["recompute", "swap"])
def test_fast_forward_over_blocks_gives_the_per_iteration_results(preemption: str) -> None:
    # The block histogram's closed form (how many decode iterations fit) against stepping every iteration.
    requests = {"source": "synthetic", "count": 300, "arrival": {"process": "poisson", "rate": "20/s"},
                "prompt_tokens": {"distribution": "lognormal", "median": 600, "sigma": 0.6, "max": 6000},
                "output_tokens": {"distribution": "lognormal", "median": 200, "sigma": 0.6, "max": 1500},
                "sessions": 30}
    data = scenario(requests, {"preemption": preemption, "block_size": 32}, kv_tokens=8_000, max_batch=64)
    fast = run(data)
    data["workload"]["inference"]["fast_forward"] = False
    slow = run(data)
    assert fast.summary["inference"]["preemptions"] > 0
    for column in ("first_token_s", "end_s"):
        np.testing.assert_allclose(fast.requests[column], slow.requests[column], rtol=1e-9)
    assert fast.request_kv.equals(slow.request_kv) or np.allclose(fast.request_kv["swap_s"], slow.request_kv["swap_s"])
    assert fast.request_kv["prefill_cached"].tolist() == slow.request_kv["prefill_cached"].tolist()


def routed(tmp_path: Path, balancer: Any) -> RunResult:
    prefixes = {"X": [1, 2], "Y": [3, 4]}
    order = ["X", "X", "Y", "Y", "X", "X"]
    rows = [{"t": 10_000 * i, "in": 128, "out": 1, "h": prefixes[name]} for i, name in enumerate(order)]
    requests = {"source": "trace", "path": jsonl(tmp_path, rows), "block_size": 64, "time_unit": "ms",
                "columns": {"arrival": "t", "prompt_tokens": "in", "output_tokens": "out", "prefix_hashes": "h"}}
    data = scenario(requests, {"block_size": 16})
    data["workload"]["inference"]["services"][0]["replicas"][0]["count"] = 2
    data["policies"] = {"balancer": balancer}
    return run(data)


def test_prefix_aware_routing_follows_the_cached_prefix(tmp_path: Path) -> None:
    blind = routed(tmp_path, "round_robin")
    assert blind.requests["replica"].tolist() == [0, 1, 0, 1, 0, 1]
    assert (blind.request_kv["first_cached"] > 0).tolist() == [False, False, False, False, True, True]
    aware = routed(tmp_path, {"name": "prefix_aware", "params": {"prefix_weight": 1.0, "load_weight": 0.5}})
    assert aware.requests["replica"].tolist() == [0, 0, 1, 1, 0, 0]
    assert (aware.request_kv["first_cached"] > 0).tolist() == [False, True, False, True, True, True]
    assert aware.summary["inference"]["kv_cache"]["request_hit_rate"] == pytest.approx(4 / 6)


def test_prefix_aware_weighs_the_cached_share_against_load() -> None:
    from dcsim.policies.registry import build

    class View:
        def __init__(self, rid: int, tokens: int, hit: int) -> None:
            self.id, self.outstanding_tokens, self.hit = rid, tokens, hit

        def prefix_hit(self, request: Any) -> int:
            return self.hit

    class Offered:
        def __init__(self, *replicas: View) -> None:
            self.replicas = replicas

    class Prompt:
        prompt_tokens = 1000

    offered = Offered(View(0, 4000, 800), View(1, 1000, 0))
    # replica 0: 0.8 cached, load 1.0; replica 1: nothing cached, load 0.25
    assert build("balancer", "prefix_aware", {"prefix_weight": 1.0, "load_weight": 0.5}).choose(Prompt(), offered) == 0
    assert build("balancer", "prefix_aware", {"prefix_weight": 1.0, "load_weight": 2.0}).choose(Prompt(), offered) == 1
    assert build("balancer", "prefix_aware", {"prefix_weight": 0.0, "load_weight": 1.0}).choose(Prompt(), offered) == 1
    with pytest.raises(PolicyError, match="load_weight must be >= 0"):
        build("balancer", "prefix_aware", {"load_weight": -1.0})


def test_the_report_shows_the_prefix_cache_only_when_paged(tmp_path: Path) -> None:
    from dcsim.reporting import write_report

    paged = routed(tmp_path, "round_robin")
    (tmp_path / "paged").mkdir()
    (tmp_path / "plain").mkdir()
    write_report(paged, tmp_path / "paged")
    html = (tmp_path / "paged" / "report.html").read_text()
    assert "KV cache and prefix caching" in html and 'alt="prefix_cache"' in html
    assert (tmp_path / "paged" / "prefix_cache.png").stat().st_size > 0
    rows = [{"t": 0, "in": 256, "out": 2, "h": [1, 2, 3, 4]}]
    requests = {"source": "trace", "path": jsonl(tmp_path, rows), "block_size": 64, "time_unit": "ms",
                "columns": {"arrival": "t", "prompt_tokens": "in", "output_tokens": "out", "prefix_hashes": "h"}}
    write_report(run(scenario(requests, None)), tmp_path / "plain")
    html = (tmp_path / "plain" / "report.html").read_text()
    assert "KV cache and prefix caching" not in html and not (tmp_path / "plain" / "prefix_cache.png").exists()


def test_prefix_cache_bulk_paths_match_the_entry_by_entry_rules() -> None:
    cache = PrefixCache()
    assert cache.add_pinned([1, 2, 2, 3], 4) == 2  # a repeated id ends the run, as an existing one would
    assert cache.add_pinned([5, 6], 4) == 2 and cache.add_pinned([6, 7], 4) == 0
    assert cache.referenced_blocks == 16
    cache.acquire([5, 6], 2)  # 5 and 6 now have two holders
    cache.release([1, 2])  # one holder each: the bulk path
    cache.release([5, 6])  # two holders: entry by entry
    assert list(cache.free) == [2, 1] and cache.refs[5] == cache.refs[6] == 1  # a prefix's end is evicted first
    assert (cache.referenced_blocks, cache.free_blocks) == (8, 8)


class ReferenceLRU:
    """The prefix cache's rules written the plain way (one OrderedDict, entry by entry), to check the bulk
    and C-level paths of engine/prefix_cache.py against."""

    def __init__(self, host_blocks: int) -> None:
        from collections import OrderedDict

        self.refs: dict[int, int] = {}
        self.free: OrderedDict[int, int] = OrderedDict()  # key -> blocks
        self.host: OrderedDict[int, int] = OrderedDict()
        self.host_capacity = host_blocks

    def release(self, keys: list[int]) -> None:
        for key in reversed(keys):  # the end of a prefix is queued first: evicted before its head
            self.refs[key] -= 1
            if not self.refs[key]:
                del self.refs[key]
                self.free[key] = self.blocks[key]

    def evict(self, blocks: int) -> int:
        freed = 0
        while freed < blocks and self.free:
            key, size = self.free.popitem(last=False)
            freed += size
            if self.host_capacity >= size:
                self.host[key] = size
                while sum(self.host.values()) > self.host_capacity:
                    self.host.popitem(last=False)
        return freed


@pytest.mark.parametrize("seed", range(6))
def test_prefix_cache_eviction_order_matches_a_plain_lru(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mixed = seed % 2 == 1  # odd seeds: entries of two sizes (session histories beside hash blocks)
    host = [0, 6][seed % 3 == 0]
    cache, ref = PrefixCache(host_blocks=host), ReferenceLRU(host)
    ref.blocks = {}
    held: list[list[int]] = []  # what each "request" pins
    shared_releases = 0
    for _ in range(3000):
        action = rng.integers(0, 5)
        if action == 0:  # a new request pins fresh entries (or an unpinned one, made evictable at once)
            keys = [int(k) for k in rng.choice(200, size=rng.integers(1, 6), replace=False)]
            keys = [k for k in keys if not cache.on_accelerator(k)]
            size = int(rng.integers(1, 4)) if mixed else 2
            if not keys:
                continue
            if rng.random() < 0.2:
                assert cache.add(keys[0], size, pinned=False)
                ref.blocks[keys[0]] = size
                ref.host.pop(keys[0], None)
                ref.free[keys[0]] = size
                continue
            for key in keys:
                assert cache.add(key, size, pinned=True)
                ref.blocks[key] = size
                ref.host.pop(key, None)
                ref.refs[key] = 1
            held.append(keys)
        elif action == 1 and ref.free:  # a request reuses unpinned entries
            keys = [k for k in ref.free if rng.random() < 0.3][:5]
            if keys:
                cache.acquire(keys, len(keys))
                for key in keys:
                    del ref.free[key]
                    ref.refs[key] = 1
                held.append(keys)
        elif action == 2 and held:  # a request ends
            keys = held.pop(int(rng.integers(0, len(held))))
            shared_releases += any(ref.refs[k] > 1 for k in keys)
            cache.release(keys)
            ref.release(keys)
        elif action == 3:
            blocks = int(rng.integers(1, 12))
            assert cache.evict(blocks) == ref.evict(blocks)
        elif action == 4 and ref.refs:  # a request shares entries others pin (and some unpinned ones)
            keys = [k for k in ref.refs if rng.random() < 0.3][:4] + [k for k in ref.free if rng.random() < 0.1][:2]
            if keys:
                cache.acquire(keys, len(keys))
                for key in keys:
                    if key in ref.free:
                        del ref.free[key]
                    ref.refs[key] = ref.refs.get(key, 0) + 1
                held.append(keys)
        assert list(cache.free) == list(ref.free)
        assert list(cache.host) == list(ref.host)
        assert cache.refs == ref.refs
        assert cache.referenced_blocks == sum(ref.blocks[k] for k in ref.refs)
        assert cache.free_blocks == sum(ref.free.values())
    assert shared_releases > 0  # the release path for entries other requests still hold was exercised

