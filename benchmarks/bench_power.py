"""Power-policy benchmark (issue 17): the cost of idle shutdown and a power budget on a 30-day run.

Runs (scenarios/quickstart.yaml, 128 accelerators, EASY backfill, 30 days of jobs at its rate, about
5,760, and a 30-day horizon), alternated so machine noise falls on all alike:
- plain: constant PUE and intensity, no power policy;
- power: the same with idle shutdown (30 min) and a 50 kW budget (binds hard: the run peaks near 83 kW);
- idle: idle shutdown only; budget70: a 70 kW budget only (binds at the peaks);
- full (with the sustaindc-grid-weather data): hourly CAISO carbon, Phoenix weather, air cooling
  (benchmarks/bench_energy.py's series scenario) plus the same power policies: the issue's target
  run. The issue's figure is full against "power" (the same run, same policies, with constant PUE and
  intensity); full against plain (no power policy either) is printed too. Target < 2x.
Timed: dcsim.run on a loaded scenario (build, simulate, frames, summary), CPU seconds (process_time)
and wall seconds, medians. Prints figures (and writes them as JSON with --json); asserts nothing.

Usage:
    python benchmarks/bench_power.py [--repeat N] [--days D] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import dcsim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_energy import DATA, QUICK, scenario  # the energy benchmark's scenarios

from dcsim.scenario.loading import scenario_from_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--json", type=Path, help="write the raw timings and counts here")
    args = parser.parse_args()
    runs = {"plain": scenario(args.days, False, False), "power": scenario(args.days, False, True)}
    for name, policy in (("idle", {"name": "idle_shutdown", "params": {"idle_after": "30min"}}),
                         ("budget70", {"name": "budget", "params": {"budget": "70kW"}})):
        data = scenario(args.days, False, False).model_dump(mode="json")
        data["policies"]["power"] = policy
        runs[name] = scenario_from_dict(data, "bench-power", str(QUICK.parent))
    if DATA.is_dir():
        runs["full"] = scenario(args.days, True, True)
    else:
        print(f"{DATA} missing: the series run is skipped")
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, dcsim.RunResult] = {}
    for _ in range(args.repeat):
        for name, loaded in runs.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            results[name] = dcsim.run(loaded)
            cpus[name].append(time.process_time() - started_cpu)
            walls[name].append(time.perf_counter() - started)
    for name, result in results.items():
        power = result.summary.get("power", {})
        training = result.summary["training"]
        print(f"{name}: CPU median {statistics.median(cpus[name]):.2f} s "
              f"({', '.join(f'{c:.2f}' for c in cpus[name])}), "
              f"wall median {statistics.median(walls[name]):.2f} s ({', '.join(f'{w:.2f}' for w in walls[name])}); "
              f"events {result.summary['events']:,}, "
              f"jobs {len(result.jobs):,}, peak IT {result.timeseries['power_it_w'].max() / 1e3:.1f} kW, "
              f"facility {result.summary['energy']['facility_kwh']:,.0f} kWh, "
              f"JCT mean {training['jct_s']['mean'] / 3600:.2f} h"
              + (f", over budget {power['over_budget_s']:.0f} s, capped {power['capped_accelerator_hours']:,.0f} "
                 f"accelerator-h, off {power['shutdown_node_hours']:,.0f} node-h" if power else ""))
    ratios = [(name, "plain") for name in runs if name != "plain"]
    if "full" in runs:
        ratios.append(("full", "power"))  # the comparison: same run, same policies, constant PUE
    for name, base in ratios:
        cpu = statistics.median(cpus[name]) / statistics.median(cpus[base])
        wall = statistics.median(walls[name]) / statistics.median(walls[base])
        print(f"{name} / {base}: CPU {cpu:.2f}x, wall {wall:.2f}x (target < 2x)")
    if args.json is not None:
        args.json.write_text(json.dumps({name: {"cpu_s": cpus[name], "wall_s": walls[name],
                                                "events": results[name].summary["events"]} for name in runs}))


if __name__ == "__main__":
    main()
