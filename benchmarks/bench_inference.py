"""Inference-serving benchmark: wall time and simulated requests per second.

Prints figures; it is not a timed test and asserts nothing. Each configuration runs in a fresh
subprocess `--repeat` times, and the table shows medians.

Configurations
- synthetic:N:R[:iter]: N requests on R replicas of Llama-2-70B (4 x H100 each, 8 per node), Poisson
  arrivals at 2.5 requests/s per replica, lognormal prompt (median 1,020, sigma 0.9, at most 4,000)
  and output (median 129, sigma 1.0, at most 2,000) tokens: the conversation trace's medians.
  `:iter` steps every decode iteration as its own event instead of fast-forwarding.
- azure:conv / azure:code: scenarios/azure_{conv,code}_balancers.yaml unchanged (the full traces,
  19,366 and 8,819 requests, replayed at 2x on four replicas). Skipped when the trace is absent.

Timed: `dcsim.run(scenario)` on an already loaded Scenario (simulation, frames, summary), so the
one-time cost of importing dcsim and loading the calibration (about 2 s here) is outside it for every
configuration; `process s` is the whole child process, imports included.

Usage:
    python benchmarks/bench_inference.py [--quick] [--repeat N] [--timeout S]
    python benchmarks/bench_inference.py --one synthetic:100000:16 --json     # one run, one JSON line
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import dcsim_source, machine, spawn, timed_run

ROOT = Path(__file__).resolve().parent.parent
RATE_PER_REPLICA = 2.5
FULL = ["synthetic:100000:16", "azure:conv", "azure:code", "synthetic:10000:16", "synthetic:10000:16:iter"]
QUICK = ["synthetic:5000:4", "synthetic:2000:4:iter", "azure:code"]


def synthetic_scenario(requests: int, replicas: int, per_iteration: bool) -> Any:
    from dcsim.scenario import scenario_from_dict

    nodes = -(-replicas * 4 // 8)
    data = {
        "name": f"bench-serving-{requests}-{replicas}", "seed": 1,
        "cluster": {"node_pools": [{"name": "h100", "count": nodes, "accelerator": "H100",
                                    "accelerators_per_node": 8}]},
        "workload": {"inference": {"fast_forward": not per_iteration, "services": [{
            "name": "chat", "model": "Llama-2-70B", "max_batch": 128,
            "replicas": [{"accelerator": "H100", "tensor_parallel": 4, "count": replicas}],
            "slo": {"ttft": "2s", "tpot": "100ms"},
            "requests": {
                "source": "synthetic", "count": requests,
                "arrival": {"process": "poisson", "rate": RATE_PER_REPLICA * replicas},
                "prompt_tokens": {"distribution": "lognormal", "median": 1020, "sigma": 0.9, "max": 4000},
                "output_tokens": {"distribution": "lognormal", "median": 129, "sigma": 1.0, "max": 2000}},
        }]}},
        "policies": {"balancer": "least_outstanding_requests"},
    }
    return scenario_from_dict(data, "<benchmark>")


def build(key: str) -> Any:
    kind, *rest = key.split(":")
    if kind == "synthetic":
        return synthetic_scenario(int(rest[0]), int(rest[1]), rest[2:] == ["iter"])
    if kind == "azure":
        from dcsim.scenario import load_scenario

        return load_scenario(ROOT / "scenarios" / f"azure_{rest[0]}_balancers.yaml")
    raise SystemExit(f"unknown configuration {key!r}")


def trace_missing(key: str) -> str | None:
    if not key.startswith("azure:"):
        return None
    from dcsim.scenario import load_scenario
    from dcsim.workload.requests_trace import request_trace_problems

    name = key.split(":")[1]
    problems = request_trace_problems(load_scenario(ROOT / "scenarios" / f"azure_{name}_balancers.yaml"))
    return problems[0] if problems else None


def run_one(key: str) -> dict[str, Any]:
    timed = timed_run(build(key))
    result, total_s, cpu_s = timed.result, timed.total_s, timed.cpu_s
    s = result.summary
    inference = s["inference"]
    return {
        "key": key, "requests": inference["requests"], "completed": inference["completed"],
        "replicas": inference["replicas_started"], "total_s": total_s, "sim_s": s["wall_time_s"], "cpu_s": cpu_s,
        "events": s["events"], "sim_time_s": s["sim_time_s"], "busy": inference["replica_busy_fraction"],
        "ttft_p99_s": inference["ttft_s"]["p99"], "e2e_p50_s": inference["e2e_s"]["p50"],
        "peak_mib": timed.peak_mib,
    }


def measure(key: str, repeat: int, timeout: float) -> dict[str, Any]:
    runs = []
    for i in range(repeat):
        record = spawn(__file__, key, timeout)
        if "error" in record:
            print(f"  {key}: {record['error']}", file=sys.stderr, flush=True)
            return record
        runs.append(record)
        print(f"  {key}: run {i + 1}/{repeat} {record['total_s']:.2f} s", file=sys.stderr, flush=True)
    med = dict(runs[0])
    for field in ("total_s", "sim_s", "cpu_s", "peak_mib", "process_s"):
        med[field] = statistics.median(r[field] for r in runs)
    med["runs"] = len(runs)
    med["total_s_all"] = [round(r["total_s"], 2) for r in runs]
    return med


HEADER = ["config", "requests", "replicas", "wall s", "sim s", "cpu s", "process s", "events", "requests/s",
          "busy", "TTFT p99 s", "peak MiB", "runs"]


def row(m: dict[str, Any]) -> list[str]:
    if "error" in m:
        return [m["key"], m["error"], *[""] * (len(HEADER) - 2)]
    return [m["key"], f"{m['requests']:,}", str(m["replicas"]), f"{m['total_s']:.2f}", f"{m['sim_s']:.2f}",
            f"{m['cpu_s']:.2f}", f"{m['process_s']:.2f}", f"{m['events']:,}",
            f"{m['requests'] / m['total_s']:,.0f}", f"{m['busy']:.3f}", f"{m['ttft_p99_s']:.3g}",
            f"{m['peak_mib']:.0f}", str(m["runs"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--one", help="run one configuration in this process")
    parser.add_argument("--json", action="store_true", help="with --one: print one JSON line")
    args = parser.parse_args()
    if args.one:
        record = run_one(args.one)
        print(json.dumps(record) if args.json else record)
        return
    print(machine())
    print(dcsim_source())
    rows = []
    for key in QUICK if args.quick else FULL:
        missing = trace_missing(key)
        if missing:
            print(f"  {key}: skipped ({missing})", file=sys.stderr)
            continue
        rows.append(row(measure(key, args.repeat, args.timeout)))
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
