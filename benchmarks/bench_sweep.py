"""Sweep machinery: its overhead per run, and what a second local worker buys (issue 18).

Two measurements, each repeated round by round so the machine's noise falls on both sides alike;
medians and ranges are printed:
- overhead: the same 6 runs (an M/M/c queue, about 1 s or more each) as plain `dcsim.run` calls and as
  `dcsim.sweep(workers=1, output=...)` (validation, run keys, the append-only store, tables; no charts).
  Overhead = sweep time / plain time - 1 (target under 5%).
- workers: a 40-run sweep (10 points x 4 seeds, shorter runs) with 1 worker and with 2 local worker
  processes, each into a fresh folder (target: 2 workers under 0.6x the time of 1). With --dask, the
  same sweep on a Dask LocalCluster of 2 workers too (its start-up included).

    python benchmarks/bench_sweep.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml

import dcsim

MMC = {
    "name": "bench-sweep", "seed": 1,
    "cluster": {"node_pools": [{"name": "p", "count": 6, "accelerator": "V100", "accelerators_per_node": 1,
                                "host_power": {"idle": "0W"}}]},
    "workload": {"training": {
        "source": "synthetic", "jobs": 8000, "arrival": {"process": "poisson", "rate": "4/h"},
        "accelerators": {"values": [1]}, "duration": {"distribution": "exponential", "mean": "1h"},
        "models": {"generic": 1.0}}},
    "policies": {"scheduler": "fifo", "placement": "pack"},
}
OVERHEAD_COUNTS = [5, 6, 7, 8, 9, 10]
WORKER_GRID = "cluster.node_pools.0.count=5,6,7,8,9,10,11,12,13,14"


def scenario_file(work: Path, jobs: int) -> Path:
    data = {**MMC, "workload": {"training": {**MMC["workload"]["training"], "jobs": jobs}}}
    path = work / f"mmc{jobs}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the local workers, once joined)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def plain_runs(path: Path) -> tuple[float, float, list[float]]:
    started, cpu = time.perf_counter(), cpu_seconds()
    walls = []
    for count in OVERHEAD_COUNTS:
        one = time.perf_counter()
        dcsim.run(path, seed=1, overrides=[f"cluster.node_pools.0.count={count}"])
        walls.append(time.perf_counter() - one)
    return time.perf_counter() - started, cpu_seconds() - cpu, walls


IN_FLIGHT: list[float] = []  # per 2-worker sweep: sum of its runs' wall times / its wall time


def swept(path: Path, folder: Path, grid: str, seeds: int, workers: int,
          dask: str | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one sweep into a fresh folder (CPU: not counting Dask's workers)."""
    shutil.rmtree(folder, ignore_errors=True)
    started, cpu = time.perf_counter(), cpu_seconds()
    result = dcsim.sweep(path, grid=[grid], seeds=seeds, workers=workers, dask=dask, output=folder, charts=False)
    elapsed = time.perf_counter() - started
    assert result.ran == len(result.runs) and result.failed == 0
    if workers == 2 and dask is None:
        IN_FLIGHT.append(float(result.runs["wall_s"].sum()) / elapsed)
    return elapsed, cpu_seconds() - cpu


def describe(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f} to {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=8000, help="jobs per run of the overhead measurement")
    parser.add_argument("--worker-jobs", type=int, default=2500, help="jobs per run of the 40-run sweep")
    parser.add_argument("--dask", action="store_true", help="also time the 40-run sweep on a Dask LocalCluster")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        long_runs, short_runs = scenario_file(work, args.jobs), scenario_file(work, args.worker_jobs)
        grid = "cluster.node_pools.0.count=" + ",".join(map(str, OVERHEAD_COUNTS))
        # Warm the imports (scipy for the CIs, the parquet writer) and numba's cache outside the timed region:
        # a one-off cost of the first sweep in a process, about a second here, not a cost per run.
        dcsim.run(long_runs, seed=1)
        swept(short_runs, work / "warm", "cluster.node_pools.0.count=5", 1, 1)
        plain, sweep, ratios, cpu_ratios, run_walls = [], [], [], [], []
        one, two, on_dask, one_cpu, two_cpu, loads = [], [], [], [], [], []
        for _ in range(args.repeat):
            plain_s, plain_cpu, walls = plain_runs(long_runs)
            sweep_s, sweep_cpu = swept(long_runs, work / "overhead", grid, 1, 1)
            plain.append(plain_s)
            sweep.append(sweep_s)
            ratios.append(sweep_s / plain_s - 1)
            cpu_ratios.append(sweep_cpu / plain_cpu - 1)
            run_walls.extend(walls)
            wall, cpu = swept(short_runs, work / "w1", WORKER_GRID, 4, 1)
            one.append(wall)
            one_cpu.append(cpu)
            wall, cpu = swept(short_runs, work / "w2", WORKER_GRID, 4, 2)
            two.append(wall)
            two_cpu.append(cpu)
            if args.dask:
                on_dask.append(swept(short_runs, work / "dask", WORKER_GRID, 4, 2, dask="local")[0])
            loads.append(os.getloadavg()[0])
        print(f"load average (1 min) after each round: {', '.join(f'{x:.1f}' for x in loads)} "
              f"on {os.cpu_count()} CPUs")
        print(f"overhead: {len(OVERHEAD_COUNTS)} runs of {describe(run_walls)} s each (median, range)")
        print(f"  plain dcsim.run total s   {describe(plain)}")
        print(f"  dcsim.sweep workers=1 s   {describe(sweep)}")
        print(f"  wall overhead per round   {', '.join(f'{r:+.1%}' for r in ratios)}; "
              f"median {statistics.median(ratios):+.1%} (target < 5%)")
        print(f"  CPU overhead per round    {', '.join(f'{r:+.1%}' for r in cpu_ratios)}; "
              f"median {statistics.median(cpu_ratios):+.1%} (CPU time: less sensitive to other load)")
        speedups = [b / a for a, b in zip(one, two, strict=True)]
        print("40-run sweep (10 points x 4 seeds):")
        print(f"  1 worker s                {describe(one)} (CPU s {describe(one_cpu)})")
        print(f"  2 local workers s         {describe(two)} (CPU s {describe(two_cpu)})")
        print(f"  2 workers / 1 worker      {', '.join(f'{r:.2f}' for r in speedups)}; "
              f"median {statistics.median(speedups):.2f} (target < 0.6)")
        print(f"  runs in flight, 2 workers {', '.join(f'{r:.2f}' for r in IN_FLIGHT)} (sum of run wall times / "
              "sweep wall time: 2 when both workers always run; their runs then slow down if no core is free)")
        if on_dask:
            print(f"  Dask LocalCluster(2) s    {describe(on_dask)} (cluster start-up included); "
                  f"/ 1 worker median {statistics.median([d / a for a, d in zip(one, on_dask, strict=True)]):.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
