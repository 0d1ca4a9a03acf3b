"""Whole-process start-up: what a user waits for, imports and charts included (issue: hardening).

Three commands, each run in a fresh process, interleaved round by round so that the machine's noise
falls on all of them alike; medians and ranges are printed:
- `import`: python -c "import dcsim" (target under 0.3 s),
- `run100`: dcsim run --no-charts on a 100-job synthetic training scenario on 24 GPUs (target 0.8 s),
- `quickstart`: dcsim run scenarios/quickstart.yaml with charts and report.html (target 2 s).

    python benchmarks/bench_startup.py --repeat 7
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_100 = """\
name: startup100
seed: 1
cluster:
  node_pools:
    - {name: gpu, count: 3, accelerator: V100, accelerators_per_node: 8}
workload:
  training:
    source: synthetic
    jobs: 100
    arrival: {process: poisson, rate: 30/h}
    accelerators: {values: [1, 2, 4, 8], weights: [4, 2, 2, 1]}
    duration: {distribution: lognormal, median: 20min, sigma: 1.0}
policies: {scheduler: fifo, placement: pack}
"""
TARGETS = {"import": 0.3, "run100": 0.8, "quickstart": 2.0}


def commands(work: Path) -> dict[str, list[str]]:
    scenario = work / "startup100.yaml"
    scenario.write_text(SCENARIO_100)
    dcsim = [sys.executable, "-m", "dcsim"]
    return {"import": [sys.executable, "-c", "import dcsim"],
            "run100": [*dcsim, "run", str(scenario), "-o", str(work / "run100"), "--no-charts"],
            "quickstart": [*dcsim, "run", str(ROOT / "scenarios" / "quickstart.yaml"), "-o", str(work / "quick")]}


def timed(command: list[str], work: Path) -> float:
    for folder in ("run100", "quick"):  # each run writes a fresh folder, as a first run would
        shutil.rmtree(work / folder, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dcsim-startup-") as tmp:
        work = Path(tmp)
        runs = commands(work)
        for command in runs.values():  # warm the file cache and numba's cache once, untimed
            timed(command, work)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, command in runs.items():
                times[name].append(timed(command, work))
    print(f"{'command':<12}{'median s':>10}{'min s':>8}{'max s':>8}{'target s':>10}  met")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<12}{median:>10.3f}{min(values):>8.3f}{max(values):>8.3f}{TARGETS[name]:>10.1f}  "
              f"{'yes' if median < TARGETS[name] else 'no'}")


if __name__ == "__main__":
    main()
