"""The Philly replay with and without a network: how much the flow model costs in wall time.

Prints figures; asserts nothing. Runs scenarios/philly.yaml as shipped ("no network") and with a
leaf-spine network under its 80 nodes (16 per leaf, 4 spines, 100 Gb/s hosts, 2:1 oversubscribed;
gradients of 25 M parameters and 0.3 s compute steps for its unnamed models), each in a fresh
process, `--repeat` times, and reports the median wall time of each, their ratio (the issue's target
is 3x at most), the median of the ratios within each interleaved pair (which machine noise moves
less), the flow changes (recomputations: every start and end of one instant is one) and how
long each took on average. Before the timed runs, one process loads the flow solver, which in a fresh
checkout compiles it (numba caches the result); each timed run still pays loading that cache.

Usage:
    python benchmarks/bench_network_philly.py [--repeat 3] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import PHILLY_YAML, dcsim_source, machine, philly_trace_path  # the sibling's helpers

NETWORK = [
    "network.topology=leaf_spine", "network.host_bandwidth=100Gbps", "network.hosts_per_leaf=16",
    "network.spines=4", "network.oversubscription=2",
    "workload.training.communication.parameters=25e6", "workload.training.communication.step_time=0.3s",
]

CHILD = """
import json, sys, time
import dcsim
from dcsim.build import build_model
from dcsim.runner import resolve
overrides = json.loads(sys.argv[1])
scenario = resolve(sys.argv[2], overrides)
started = time.perf_counter()
model = build_model(scenario)
end = model.simulation.run()
wall = time.perf_counter() - started
network = model.network
print(json.dumps({"wall_s": wall, "events": model.simulation.events, "sim_s": end,
                  "completed": model.simulation.training.completed,
                  "flow_changes": network.fabric.changes if network is not None else 0,
                  "recomputed_flows": network.fabric.net.recomputed_flows if network is not None else 0}))
"""


WARM_UP = """
import time
started = time.perf_counter()
from dcsim.engine.flows import FlowNetwork
FlowNetwork([1.0]).add([0])
print(time.perf_counter() - started)
"""


def run_child(overrides: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(overrides), str(PHILLY_YAML)], check=True,
                         capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N jobs of the trace")
    args = parser.parse_args()
    print(machine())
    print(dcsim_source())
    if philly_trace_path() is None:
        print("skipped: the Philly trace named in scenarios/philly.yaml is absent")
        return
    base = [f"workload.training.limit={args.limit}"] if args.limit else []
    warm = subprocess.run([sys.executable, "-c", WARM_UP], check=True, capture_output=True, text=True)
    print(f"flow solver loaded (compiled, if this checkout had no cache yet) in {float(warm.stdout):.2f} s")
    results: dict[str, list[dict[str, Any]]] = {"no network": [], "leaf-spine": []}
    for _ in range(args.repeat):  # interleaved, so machine noise hits both alike
        results["no network"].append(run_child(base))
        results["leaf-spine"].append(run_child(base + NETWORK))
    medians = {}
    for name, runs in results.items():
        walls = [r["wall_s"] for r in runs]
        medians[name] = statistics.median(walls)
        last = runs[-1]
        per_change = medians[name] / last["flow_changes"] * 1e6 if last["flow_changes"] else 0.0
        print(f"{name:11s} wall median {medians[name]:7.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}); "
              f"{last['events']:,} events, {last['completed']:,} jobs completed, "
              f"simulated {last['sim_s'] / 86400:.1f} d, "
              f"{last['flow_changes']:,} flow changes ({last['recomputed_flows']:,} flows refilled; "
              f"{per_change:.0f} us of wall per change, all work included)")
    print(f"ratio leaf-spine / no network: {medians['leaf-spine'] / medians['no network']:.2f}x (target: <= 3x)")
    pairs = [net["wall_s"] / alone["wall_s"] for alone, net in zip(results["no network"], results["leaf-spine"],
                                                                     strict=True)]
    print(f"ratio within each interleaved pair: median {statistics.median(pairs):.2f}x "
          f"({', '.join(f'{ratio:.2f}' for ratio in pairs)})")


if __name__ == "__main__":
    main()
