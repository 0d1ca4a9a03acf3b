"""Paged KV with disaggregated pools (issue 16): prefix caching on the prefill pool, blocks on both.

A Mooncake-style deployment: prompts reuse cached prefixes on the prefill replicas, the whole prompt's
KV cache still moves to a decode replica (it needs all of it), and each pool's block ledger returns to
zero once its requests are gone."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import dcsim
from dcsim.calibration import load_calibration
from dcsim.calibration.inference import kv_bytes_per_token
from dcsim.catalog import load_catalog
from dcsim.scenario import scenario_from_dict

MODEL, ACCELERATOR, TP = "Llama-2-70B", "H100", 8
KV_BW = 10e9  # bytes/s per node NIC


def per_token() -> float:
    return kv_bytes_per_token(load_catalog().model(MODEL))


def jsonl(tmp_path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return {"source": "trace", "path": str(path), "block_size": 64, "time_unit": "ms",
            "columns": {"arrival": "t", "prompt_tokens": "in", "output_tokens": "out", "prefix_hashes": "h"}}


def disaggregated(requests: dict[str, Any], paged: dict[str, Any], kv_tokens: int | None = None,
                  prefill: int = 1, decode: int = 1) -> dict[str, Any]:
    pool = {"accelerator": ACCELERATOR, "tensor_parallel": TP}
    service: dict[str, Any] = {
        "name": "chat", "model": MODEL, "requests": requests, "paged_kv": paged,
        "prefill": {"replicas": [{**pool, "count": prefill}]}, "decode": {"replicas": [{**pool, "count": decode}]},
        "kv_transfer": {"bandwidth": KV_BW}}
    if kv_tokens is not None:
        service["kv_cache"] = f"{per_token() * kv_tokens:.0f}"
    return {"name": "paged-disagg", "seed": 3,
            "cluster": {"node_pools": [{"name": "h100", "count": prefill + decode, "accelerator": ACCELERATOR,
                                        "accelerators_per_node": 8}]},
            "workload": {"inference": {"services": [service]}}}


def run(data: dict[str, Any]) -> dcsim.RunResult:
    return dcsim.run(scenario_from_dict(copy.deepcopy(data), "paged-disagg.yaml"))


def test_a_prefix_hit_on_the_prefill_pool_cuts_ttft_but_the_whole_kv_cache_moves(tmp_path: Path) -> None:
    # 64-token hash blocks over 16-token KV blocks; B shares A's first three blocks (192 tokens), long
    # after A has ended: A's entries stayed cached on the prefill replica after its hand-off.
    prompt, cached = 256, 192
    rows = [{"t": 0, "in": prompt, "out": 2, "h": [1, 2, 3, 4]},
            {"t": 50_000, "in": prompt, "out": 2, "h": [1, 2, 3, "x"]}]
    result = run(disaggregated(jsonl(tmp_path, rows), {"block_size": 16}))
    k = load_calibration().inference.iteration_constants(load_catalog().model(MODEL), ACCELERATOR, TP)
    first, second = result.requests["ttft_s"].tolist()
    assert first == pytest.approx(k.prefill_fixed + k.prefill_token * prompt + k.prefill_token_sq * prompt**2,
                                  rel=1e-12)
    assert first - second == pytest.approx(k.prefill_token * cached + k.prefill_token_sq * cached**2, rel=1e-9)
    kv = result.request_kv
    assert kv["prefill_cached"].tolist() == [0, cached] and kv["prefill_computed"].tolist() == [prompt, prompt - cached]
    # The decode replica needs the whole prompt's KV: the transfer covers all 256 tokens, cached or not.
    moved = result.kv_transfers
    assert moved["bytes"].tolist() == [prompt * per_token()] * 2
    transfer = prompt * per_token() / KV_BW  # two nodes: over the prefill node's NIC
    assert moved["transfer_s"].tolist() == pytest.approx([transfer] * 2, rel=1e-9)
    decode_time = load_calibration().inference.decode_time(load_catalog().model(MODEL), ACCELERATOR, 1, prompt, TP)
    e2e = result.requests["e2e_s"].tolist()
    assert e2e[1] == pytest.approx(second + transfer + decode_time, rel=1e-12)
    assert (moved["prefill_replica"].tolist(), moved["decode_replica"].tolist()) == ([0, 0], [1, 1])
    # Blocks: the prefill replica keeps A's 4 entries (16 blocks) and B's new one cached, holding nothing;
    # the decode replica caches nothing and is empty at the end.
    blocks = result.replica_kv
    last = blocks.groupby("replica_id").last()
    assert last.loc[0, "used_blocks"] == 0 and last.loc[0, "cached_blocks"] == 5 * 4
    assert last.loc[1, "used_blocks"] == 0 and (blocks.loc[blocks["replica_id"] == 1, "cached_blocks"] == 0).all()
    section = result.summary["inference"]["kv_cache"]
    assert section["token_hit_rate"] == pytest.approx(cached / (2 * prompt)) and section["request_hit_rate"] == 0.5


def shared_prefix_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """Requests drawn from 12 prompt families (shared leading hash blocks, then their own), 4 per second."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        family = int(rng.integers(12))
        shared = int(rng.integers(1, 6))
        own = int(rng.integers(0, 4))
        hashes = [f"f{family}-{j}" for j in range(shared)] + [f"r{i}-{j}" for j in range(own)]
        rows.append({"t": int(i * 250), "in": 64 * (len(hashes) - 1) + int(rng.integers(1, 65)),
                     "out": int(rng.integers(1, 200)), "h": hashes})
    return rows


@pytest.mark.parametrize("preemption", ["recompute", "swap"])
def test_blocks_are_conserved_on_both_pools(tmp_path: Path, preemption: str) -> None:
    # 2 prefill and 2 decode replicas of 4,096 tokens (256 blocks): the prefill caches fill and evict,
    # decode batches grow until they preempt.
    paged = {"block_size": 16, "preemption": preemption}
    result = run(disaggregated(jsonl(tmp_path, shared_prefix_rows(600, 5)), paged, kv_tokens=4096,
                               prefill=2, decode=2))
    requests = result.requests
    inference = result.summary["inference"]
    assert set(requests["state"]) <= {"completed", "rejected"}
    assert inference["completed"] + inference["dropped"] + inference["unfinished"] == inference["requests"] == 600
    done = requests["state"].to_numpy() == "completed"
    kv = result.request_kv
    assert (kv["prefill_cached"] + kv["prefill_computed"] == kv["prefill_requested"])[done].all()
    blocks = result.replica_kv
    assert (blocks["used_blocks"] + blocks["cached_blocks"] <= blocks["capacity_blocks"]).all()
    pools = result.pools
    prefill_ids = set(pools.loc[pools["pool"] == "prefill", "replica_id"])
    decode_ids = set(pools.loc[pools["pool"] == "decode", "replica_id"])
    assert len(prefill_ids) == len(decode_ids) == 2
    last = blocks.groupby("replica_id").last()
    assert (last["used_blocks"] == 0).all()  # every block a request held came back, in both pools
    on_decode = blocks["replica_id"].isin(decode_ids)
    assert (blocks.loc[on_decode, "cached_blocks"] == 0).all() and blocks.loc[on_decode, "used_blocks"].max() > 0
    assert blocks.loc[~on_decode, "cached_blocks"].max() > 0
    section = inference["kv_cache"]
    assert section["token_hit_rate"] > 0.2 and section["evictions"] > 0
    # Every request with more than one output token moved its whole context once (no preemption happens
    # on a prefill replica: it only prefills), so transfer bytes are the prompts' KV.
    moved = result.kv_transfers.set_index("request_id")
    multi = requests[done & (requests["output_tokens"] > 1).to_numpy()].set_index("request_id")
    assert sorted(moved.index) == sorted(multi.index)
    assert np.allclose(moved.loc[multi.index, "bytes"], multi["prompt_tokens"] * per_token())
    if preemption == "swap":
        assert section["swaps_out"] > 0 and section["swaps_in"] == section["swaps_out"]
