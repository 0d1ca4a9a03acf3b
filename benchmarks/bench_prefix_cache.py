"""Prefix-caching benchmark: simulated requests per second on the Mooncake trace, against the Azure baseline.

Prints figures; it is not a timed test and asserts nothing. Each configuration runs in a fresh
subprocess `--repeat` times (one core each, one after another), and the table shows medians.

Configurations
- azure:conv: scenarios/azure_conv_balancers.yaml unchanged (19,366 requests, no paged KV): the
  baseline bench_inference.py measures, run here in the same session so the ratio is fair.
- mooncake:plain: the Mooncake synthetic trace (3,993 requests with 512-token prefix hashes), replayed
  `--times` times back to back (each copy's hashes shifted so copies share nothing) at its own rate on
  12 replicas of Llama-3.1-70B (8 x H100 each), token-granular KV: what paged KV costs is measured
  against this.
- mooncake:paged: paged_kv without prefix caching (what the block ledger alone costs).
- mooncake:prefix: the same with paged_kv (16-token blocks, prefix caching, recompute).
- mooncake:prefix-swap: paged_kv with swap preemption and a 200 GB host tier per replica.
- mooncake:aware: paged_kv with the prefix_aware balancer (instead of least_outstanding_requests).
- mooncake:store: paged_kv with a 2 TB shared KV store (paged_kv.shared_store, 25 GB/s per replica),
  least_outstanding_requests: prefixes computed on one replica are reused on the others.
- mooncake:disagg: a Mooncake-style deployment of the same 12 replicas: a prefill pool of 9 with
  prefix caching and a decode pool of 3 (paged KV without a prefix cache; the trace's prompts are
  long and its outputs short), each KV cache moved over the prefill node's NIC (default kv_transfer).

Timed: `dcsim.run(scenario)` on an already loaded Scenario: reading the trace file (CSV or JSON Lines),
the simulation, frames and summary; importing dcsim and writing the repeated trace file are not. The
table's rate is requests per CPU second of the process (time.process_time): on a shared, loaded machine
wall time swings by 2x between runs while CPU time moves much less. Wall seconds are shown beside it.

Usage:
    python benchmarks/bench_prefix_cache.py [--repeat N] [--times K]
    python benchmarks/bench_prefix_cache.py --one mooncake:prefix --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import dcsim_source, machine  # the sibling benchmark's helpers

ROOT = Path(__file__).resolve().parent.parent
MOONCAKE = ROOT.parent / "shared" / "data" / "mooncake-synthetic" / "synthetic_trace.jsonl"
CONFIGS = ["azure:conv", "mooncake:plain", "mooncake:paged", "mooncake:prefix", "mooncake:prefix-swap",
           "mooncake:aware", "mooncake:store", "mooncake:disagg"]


def mooncake_copies(times: int, folder: Path) -> Path:
    """The trace `times` times in a row (later copies start after the last arrival, hashes shifted)."""
    rows = [json.loads(line) for line in MOONCAKE.read_text().splitlines() if line.strip()]
    span = max(row["timestamp"] for row in rows) + 1
    shift = max(max(row["hash_ids"], default=0) for row in rows) + 1
    path = folder / f"mooncake_x{times}.jsonl"
    with path.open("w") as out:
        for copy in range(times):
            for row in rows:
                out.write(json.dumps({**row, "timestamp": row["timestamp"] + copy * span,
                                      "hash_ids": [h + copy * shift for h in row["hash_ids"]]}) + "\n")
    return path


def mooncake_scenario(variant: str, times: int, folder: Path) -> Any:
    from dcsim.scenario import scenario_from_dict

    service: dict[str, Any] = {
        "name": "kimi", "model": "Llama-3.1-70B", "max_batch": 128,
        "replicas": [{"accelerator": "H100", "tensor_parallel": 8, "count": 12}],
        "slo": {"ttft": "5s", "tpot": "100ms"},
        "requests": {"source": "trace", "path": str(mooncake_copies(times, folder)), "format": "mooncake"}}
    if variant != "plain":
        service["paged_kv"] = {"block_size": 16}
    if variant == "disagg":
        def pool(count: int) -> dict[str, Any]:
            return {"replicas": [{"accelerator": "H100", "tensor_parallel": 8, "count": count}]}
        del service["replicas"]
        service.update(prefill=pool(9), decode=pool(3))
    if variant == "paged":
        service["paged_kv"]["prefix_caching"] = False
    if variant == "prefix-swap":
        service["paged_kv"].update({"preemption": "swap", "host_cache": "200 GB"})
    if variant == "store":
        service["paged_kv"]["shared_store"] = {"capacity": "2 TB", "bandwidth": "25 GB/s"}
    balancer = "prefix_aware" if variant == "aware" else "least_outstanding_requests"
    data = {"name": f"bench-mooncake-{variant}", "seed": 1,
            "cluster": {"node_pools": [{"name": "h100", "count": 12, "accelerator": "H100",
                                        "accelerators_per_node": 8}]},
            "workload": {"inference": {"services": [service]}},
            "policies": {"balancer": balancer}}
    return scenario_from_dict(data, "<benchmark>")


def build(key: str, times: int, folder: Path) -> Any:
    kind, variant = key.split(":")
    if kind == "azure":
        from dcsim.scenario import load_scenario

        return load_scenario(ROOT / "scenarios" / f"azure_{variant}_balancers.yaml")
    return mooncake_scenario(variant, times, folder)


def run_one(key: str, times: int) -> dict[str, Any]:
    import tempfile

    import dcsim
    import dcsim.runner

    with tempfile.TemporaryDirectory() as folder:
        scenario = build(key, times, Path(folder))
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        result = dcsim.run(scenario)
        total_s = time.perf_counter() - t0
        cpu_s = time.process_time() - cpu0
    inference = result.summary["inference"]
    kv = inference.get("kv_cache", {})
    return {"key": key, "requests": inference["requests"], "completed": inference["completed"],
            "total_s": total_s, "cpu_s": cpu_s, "events": result.summary["events"],
            "ttft_p50_s": inference["ttft_s"]["p50"],
            "hit_rate": kv.get("token_hit_rate"), "preemptions": inference["preemptions"]}


def measure(key: str, repeat: int, times: int, timeout: float) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", key, "--times", str(times), "--json"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        if done.returncode != 0:
            return {"key": key, "error": ((done.stderr or done.stdout).strip().splitlines() or ["failed"])[-1]}
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  {key}: {runs[-1]['total_s']:.2f} s wall, {runs[-1]['cpu_s']:.2f} s cpu", file=sys.stderr,
              flush=True)
    med = dict(runs[0])
    med["total_s"] = statistics.median(r["total_s"] for r in runs)
    med["cpu_s"] = statistics.median(r["cpu_s"] for r in runs)
    med["all"] = [round(r["cpu_s"], 2) for r in runs]
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--times", type=int, default=5, help="copies of the Mooncake trace, back to back")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--one", help="run one configuration in this process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.one:
        record = run_one(args.one, args.times)
        print(json.dumps(record) if args.json else record)
        return
    if not MOONCAKE.is_file():
        raise SystemExit(f"{MOONCAKE} is absent: nothing to measure")
    print(machine())
    print(dcsim_source())
    print("| config | requests | completed | events | wall s | cpu s | requests per cpu s | token hit rate | "
          "preemptions | TTFT p50 s | runs (cpu s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in CONFIGS:
        m = measure(key, args.repeat, args.times, args.timeout)
        if "error" in m:
            print(f"| {key} | {m['error']} |")
            continue
        hit = "" if m["hit_rate"] is None else f"{m['hit_rate']:.3f}"
        print(f"| {key} | {m['requests']:,} | {m['completed']:,} | {m['events']:,} | {m['total_s']:.2f} | "
              f"{m['cpu_s']:.2f} | **{m['requests'] / m['cpu_s']:,.0f}** | {hit} | {m['preemptions']:,} | "
              f"{m['ttft_p50_s']:.3g} | "
              f"{', '.join(map(str, m['all']))} |", flush=True)


if __name__ == "__main__":
    main()
