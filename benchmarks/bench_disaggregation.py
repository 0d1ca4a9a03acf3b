"""Disaggregated prefill/decode benchmark: simulated requests per second on the Azure conversation trace.

Prints figures; it is not a timed test and asserts nothing. Each configuration runs in a fresh
subprocess `--repeat` times, and the table shows medians. All three replay the full trace (19,366
requests at 2x) from scenarios/azure_conv_balancers.yaml on its 2 nodes of 8 H100s:

- colocated: the scenario unchanged, four Llama-2-70B replicas (4 x H100) that prefill and decode
  (today's figure, the baseline, measured in the same run);
- disagg: the same 16 accelerators as a prefill pool of 2 replicas and a decode pool of 2 (4 x H100
  each); the prefill pool fills one node, so every KV cache crosses to the other over its 50 GB/s NIC;
- disagg:net: as disagg, with a leaf-spine network section (400 Gb/s host links): each KV transfer is a
  flow on the fabric (max-min fair rates recomputed at every start and end).

Timed: `dcsim.run(scenario)` on an already loaded Scenario (simulation, frames, summary); imports and
loading the calibration are outside it. Wall and CPU seconds are both printed: on a shared machine the
process's CPU time is the steadier measure of one core's work. Skipped when the trace is absent.

Usage:
    python benchmarks/bench_disaggregation.py [--repeat N] [--timeout S]
    python benchmarks/bench_disaggregation.py --one disagg --json
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
SCENARIO = ROOT / "scenarios" / "azure_conv_balancers.yaml"
CONFIGS = ["colocated", "disagg", "disagg:net"]


def build(key: str) -> Any:
    import yaml

    from dcsim.scenario import load_scenario, scenario_from_dict

    if key == "colocated":
        return load_scenario(SCENARIO)
    data = yaml.safe_load(SCENARIO.read_text())
    service = data["workload"]["inference"]["services"][0]
    group = service.pop("replicas")[0]
    service["prefill"] = {"replicas": [{**group, "count": 2}]}
    service["decode"] = {"replicas": [{**group, "count": 2}]}
    if key == "disagg:net":
        data["network"] = {"topology": "leaf_spine", "host_bandwidth": "400Gb/s", "hosts_per_leaf": 2, "spines": 1}
    return scenario_from_dict(data, str(SCENARIO), base_dir=str(SCENARIO.parent))


def run_one(key: str) -> dict[str, Any]:
    timed = timed_run(build(key))
    result, total_s, cpu_s = timed.result, timed.total_s, timed.cpu_s
    s = result.summary
    inference = s["inference"]
    service = inference["services"]["conversation"]
    disagg = service.get("disaggregation", {})
    return {
        "key": key, "requests": inference["requests"], "completed": inference["completed"], "total_s": total_s,
        "cpu_s": cpu_s, "events": s["events"], "ttft_p99_s": inference["ttft_s"]["p99"],
        "tpot_p99_s": inference["tpot_s"]["p99"],
        "slo": inference["slo_attainment"], "kv_transfer_p50_s": (disagg.get("kv_transfer_s") or {}).get("p50"),
        "peak_mib": timed.peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--one", help="run one configuration in this process")
    parser.add_argument("--json", action="store_true", help="with --one: print one JSON line")
    args = parser.parse_args()
    if args.one:
        record = run_one(args.one)
        print(json.dumps(record) if args.json else record)
        return
    from dcsim.scenario import load_scenario
    from dcsim.workload.requests_trace import request_trace_problems

    problems = request_trace_problems(load_scenario(SCENARIO))
    if problems:
        print(f"skipped: {problems[0]}")
        return
    print(machine())
    print(dcsim_source())
    print("| config | requests | completed | wall s (median; each run) | cpu s | runs | events | requests/s wall | "
          "requests/s cpu | TTFT p99 s | TPOT p99 s | SLO met | KV transfer p50 ms | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    # Interleaved (colocated, disagg, disagg:net, colocated, ...) so machine load drifts hit all alike.
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in CONFIGS}
    for i in range(args.repeat):
        for key in CONFIGS:
            record = spawn(__file__, key, args.timeout)
            if "error" in record:
                print(f"  {key}: {record['error']}", file=sys.stderr, flush=True)
                continue
            runs[key].append(record)
            print(f"  {key}: run {i + 1}/{args.repeat} {record['total_s']:.2f} s", file=sys.stderr, flush=True)
    for key in CONFIGS:
        if not runs[key]:
            continue
        m = runs[key][0]
        wall = statistics.median(r["total_s"] for r in runs[key])
        cpu = statistics.median(r["cpu_s"] for r in runs[key])
        transfer = f"{m['kv_transfer_p50_s'] * 1e3:.2f}" if m["kv_transfer_p50_s"] is not None else "-"
        each = ", ".join(f"{r['total_s']:.2f}" for r in runs[key])
        print(f"| {key} | {m['requests']:,} | {m['completed']:,} | {wall:.2f} ({each}) | {cpu:.2f} | "
              f"{len(runs[key])} | {m['events']:,} | {m['requests'] / wall:,.0f} | **{m['requests'] / cpu:,.0f}** | "
              f"{m['ttft_p99_s']:.3g} | {m['tpot_p99_s']:.3g} | {m['slo']:.3f} | "
              f"{transfer} | {statistics.median(r['peak_mib'] for r in runs[key]):.0f} |")


if __name__ == "__main__":
    main()
