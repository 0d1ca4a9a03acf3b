"""Preemptive scheduler benchmark: wall time of whole runs (build, simulate, frames, summary).

Prints figures; it is not a timed test and asserts nothing. Configurations (issue 13):
- philly-tiresias, philly-las360: the Philly trace (scenarios/philly.yaml, 82k jobs, 640 P100) under
  tiresias (default queues) and under las with 360 s rounds; targets < 20 s each on one core.
- gavel300: 300 synthetic jobs on 36 V100 + 36 P100 + 36 K80 (nodes of 4) under gavel
  max_min_fairness with 360 s rounds; target < 5 s.

Each run's wall time and CPU time (process_time: what this process computed, less sensitive than
wall time to other processes on a shared machine); with --repeat N, the medians of N runs in turn.

Usage:
    python benchmarks/bench_preemption.py [--only NAME] [--limit N] [--repeat N]   # --limit: first N Philly jobs
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import dcsim
from dcsim.scenario import scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
PHILLY_YAML = ROOT / "scenarios" / "philly.yaml"


def gavel_scenario(jobs: int = 300) -> Any:
    pools = [{"name": name, "count": 9, "accelerator": model, "accelerators_per_node": 4,
              "host_power": {"idle": "300W"}} for name, model in (("v100", "V100"), ("p100", "P100"), ("k80", "K80"))]
    return scenario_from_dict({
        "name": "gavel300", "seed": 0, "cluster": {"node_pools": pools},
        "workload": {"training": {
            "source": "synthetic", "jobs": jobs, "arrival": {"process": "poisson", "rate": "20/h"},
            "accelerators": {"values": [1, 2, 4, 8], "weights": [6, 2, 1, 1]},
            "duration": {"distribution": "lognormal", "median": "2h", "sigma": 1.2},
            "models": {"ResNet-50": 1, "LM": 1, "generic": 1}}},
        "policies": {"scheduler": {"name": "gavel", "params": {"objective": "max_min_fairness", "round": 360.0}},
                     "placement": "pack"}})


def philly(policy: dict[str, Any], limit: int | None) -> dcsim.RunResult:
    overrides = [f"policies.scheduler.name={policy['name']}",
                 f"policies.scheduler.params={policy.get('params', {})}".replace("'", "")]
    if limit is not None:
        overrides.append(f"workload.training.limit={limit}")
    return dcsim.run(PHILLY_YAML, overrides=overrides)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["philly-tiresias", "philly-las360", "gavel300"])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    configs = {
        "philly-tiresias": lambda: philly({"name": "tiresias"}, args.limit),
        "philly-las360": lambda: philly({"name": "las", "params": {"round": 360.0}}, args.limit),
        "gavel300": lambda: dcsim.run(gavel_scenario()),
    }
    times: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        for name, run in configs.items():
            if args.only and name != args.only:
                continue
            start, cpu = time.perf_counter(), time.process_time()
            result = run()
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            times.setdefault(name, []).append((wall, cpu))
            training = result.summary["training"]
            preemption = training.get("preemption", {})
            print(f"{name:16s} wall {wall:7.2f} s  cpu {cpu:7.2f} s  jobs {training['jobs_submitted']:6d} completed "
                  f"{training['jobs_completed']:6d}  events {result.summary['events']:8d}  preemptions "
                  f"{preemption.get('preemptions')}  migrations {preemption.get('migrations')}  jct mean "
                  f"{training['jct_s']['mean']:.0f} s", flush=True)
    if args.repeat > 1:
        for name, runs in times.items():
            print(f"{name:16s} median of {len(runs)}: wall {statistics.median(w for w, _ in runs):7.2f} s  "
                  f"cpu {statistics.median(c for _, c in runs):7.2f} s")


if __name__ == "__main__":
    main()
