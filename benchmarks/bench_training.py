"""Training-cluster benchmark: wall time, simulated events per second and peak memory.

Prints figures; it is not a timed test and asserts nothing. Each configuration runs in a fresh
subprocess (so peak RSS is per configuration), `--repeat` times, and the table shows medians.

Configurations
- philly: the full Philly trace replay (scenarios/philly.yaml, 82k jobs, 640 P100, easy_backfill).
- grid: 10k and 100k synthetic jobs on 1,024 and 8,192 H100 (nodes of 8) under fifo and easy_backfill.
- overload: 100k jobs on 1,024 H100 at offered load 1.05, so the queue grows to thousands of jobs
  (the regime where a backfill scan is most expensive).
- scaling: 5k..80k synthetic jobs at 1,024 H100, same offered load, fifo and easy_backfill, with the
  fitted log-log slope of time vs jobs (n log n shows as a slope a little above 1).

Synthetic workload: Poisson arrivals whose rate gives an offered load of 0.9 of capacity, gang sizes
{1,2,4,8,16,32} weighted {60,10,10,12,5,3}, lognormal durations (median 2 h, sigma 1.2, reference
V100 time), estimate_error 1.0, the generic model type.

Usage:
    python benchmarks/bench_training.py [--quick] [--repeat N] [--only philly|grid|overload|scaling]
                                        [--load L] [--timeout S] [--json-out FILE]
    python benchmarks/bench_training.py --one synthetic:10000:1024:fifo --json   # one run, JSON line
    python benchmarks/bench_training.py --profile synthetic:10000:1024:easy_backfill [--top 10]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from harness import dcsim_source, machine, spawn, timed_run  # the siblings import machine, dcsim_source from here too

ROOT = Path(__file__).resolve().parent.parent
PHILLY_YAML = ROOT / "scenarios" / "philly.yaml"

GANG_VALUES = [1, 2, 4, 8, 16, 32]
GANG_WEIGHTS = [60, 10, 10, 12, 5, 3]
DURATION_MEDIAN_S = 2 * 3600.0
DURATION_SIGMA = 1.2
OFFERED_LOAD = 0.9
ACCELERATOR = "H100"
PER_NODE = 8
SEED = 1

OVERLOAD = 1.05  # offered load of the long-queue stress configuration

SCHEDULERS = ("fifo", "easy_backfill")


# --- configurations ------------------------------------------------------------------------------


def synthetic_key(jobs: int, accelerators: int, scheduler: str, load: float = OFFERED_LOAD) -> str:
    key = f"synthetic:{jobs}:{accelerators}:{scheduler}"
    return key if load == OFFERED_LOAD else f"{key}:{load:g}"


def parse_key(key: str) -> dict[str, Any]:
    parts = key.split(":")
    if parts[0] == "philly" and len(parts) in (1, 2, 3):
        return {"kind": "philly", "scheduler": parts[1] if len(parts) >= 2 else "easy_backfill",
                "limit": int(parts[2]) if len(parts) == 3 else None}
    if parts[0] == "synthetic" and len(parts) in (4, 5):
        return {"kind": "synthetic", "jobs": int(parts[1]), "accelerators": int(parts[2]),
                "scheduler": parts[3], "load": float(parts[4]) if len(parts) == 5 else OFFERED_LOAD}
    raise SystemExit(f"bad configuration {key!r}: use philly[:SCHED[:LIMIT]] or "
                     "synthetic:JOBS:ACCELERATORS:SCHED[:LOAD]")


def arrival_rate(accelerators: int, load: float = OFFERED_LOAD) -> float:
    """Jobs per second for the offered load: load * capacity * speed / (mean gang * mean duration)."""
    from dcsim.calibration import load_calibration

    calibration = load_calibration()
    speed = calibration.relative_speed("generic", ACCELERATOR) / calibration.relative_speed("generic", "V100")
    mean_gang = sum(v * w for v, w in zip(GANG_VALUES, GANG_WEIGHTS, strict=True)) / sum(GANG_WEIGHTS)
    mean_duration = DURATION_MEDIAN_S * math.exp(DURATION_SIGMA**2 / 2)  # lognormal mean, V100 seconds
    return load * accelerators * speed / (mean_gang * mean_duration)


def synthetic_scenario(
    jobs: int, accelerators: int, scheduler: str, load: float = OFFERED_LOAD
) -> dict[str, Any]:
    if accelerators % PER_NODE:
        raise SystemExit(f"accelerators must be a multiple of {PER_NODE}, got {accelerators}")
    return {
        "name": f"bench-{jobs}-{accelerators}-{scheduler}",
        "seed": SEED,
        "cluster": {"node_pools": [{
            "name": "h100", "count": accelerators // PER_NODE, "accelerator": ACCELERATOR,
            "accelerators_per_node": PER_NODE, "host_power": {"idle": 600.0, "busy": 1400.0},
        }]},
        "workload": {"training": {
            "source": "synthetic", "jobs": jobs,
            "arrival": {"process": "poisson", "rate": arrival_rate(accelerators, load)},
            "accelerators": {"values": GANG_VALUES, "weights": GANG_WEIGHTS},
            "duration": {"distribution": "lognormal", "median": DURATION_MEDIAN_S, "sigma": DURATION_SIGMA},
            "estimate_error": 1.0,
        }},
        "policies": {"scheduler": scheduler, "placement": "pack"},
    }


def build(key: str) -> Any:
    """The Scenario for a configuration key (import of dcsim happens here, in the child)."""
    from dcsim.scenario import load_scenario
    from dcsim.scenario.loading import scenario_from_dict

    spec = parse_key(key)
    if spec["kind"] == "philly":
        overrides = [f"policies.scheduler={spec['scheduler']}"]
        if spec["limit"] is not None:
            overrides.append(f"workload.training.limit={spec['limit']}")
        return load_scenario(PHILLY_YAML, overrides)
    return scenario_from_dict(
        synthetic_scenario(spec["jobs"], spec["accelerators"], spec["scheduler"], spec["load"]), key)


def philly_trace_path() -> Path | None:
    """The trace file philly.yaml points at, or None if it is absent."""
    import yaml

    data = yaml.safe_load(PHILLY_YAML.read_text())
    path = (PHILLY_YAML.parent / data["workload"]["training"]["path"]).resolve()
    return path if path.is_file() else None


# --- one run (child process) ---------------------------------------------------------------------


def run_one(key: str) -> dict[str, Any]:
    import resource

    scenario = build(key)
    rss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timed = timed_run(scenario)
    result, total_s, cpu_s, peak_kib = timed.result, timed.total_s, timed.cpu_s, timed.peak_mib * 1024
    s = result.summary
    util_arr, queue_arr = arrival_window_levels(result)
    training = s.get("training", {})
    capacity = cluster_size(result)
    return {
        "key": key, "jobs": training.get("jobs_submitted"), "completed": training.get("jobs_completed"),
        "accelerators": capacity, "scheduler": result.scenario["policies"]["scheduler"]["name"],
        "total_s": total_s, "sim_s": s["wall_time_s"], "cpu_s": cpu_s, "events": s["events"],
        "sim_time_s": s["sim_time_s"], "busy_util": s["utilization"]["busy"]["all"],
        "alloc_util": s["utilization"]["allocated"]["all"], "busy_util_arrivals": util_arr,
        "queue_mean_arrivals": queue_arr, "queue_mean": s["queue"]["length_mean"],
        "queue_max": s["queue"]["length_max"], "wait_mean_s": training.get("wait_s", {}).get("mean"),
        "peak_mib": peak_kib / 1024, "rss_before_run_mib": rss_before_kib / 1024,
    }


def cluster_size(result: Any) -> int:
    """Accelerators in the simulated cluster, from the resolved scenario."""
    pools = result.scenario["cluster"]["node_pools"]
    return sum(int(p["count"]) * int(p["accelerators_per_node"]) for p in pools)


def arrival_window_levels(result: Any) -> tuple[float | None, float | None]:
    """Time-weighted busy utilization and queue length between the first and the last arrival.

    The whole-run figures in summary.json include the drain after the last arrival, when the
    cluster empties; the arrival window shows the load regime the scheduler worked in.
    """
    import numpy as np

    ts, jobs = result.timeseries, result.jobs
    if len(ts) < 2 or len(jobs) < 2:
        return None, None
    times = ts["time_s"].to_numpy(dtype=float)
    weights = np.diff(times, append=times[-1])
    lo, hi = float(jobs["submit_s"].min()), float(jobs["submit_s"].max())
    # clip each piecewise-constant interval to [lo, hi]
    starts = np.clip(times, lo, hi)
    ends = np.clip(times + weights, lo, hi)
    span = ends - starts
    if span.sum() <= 0:
        return None, None
    capacity = cluster_size(result)
    busy = float(np.dot(ts["busy_all"].to_numpy(dtype=float), span) / span.sum() / capacity)
    queue = float(np.dot(ts["queue_length"].to_numpy(dtype=float), span) / span.sum())
    return busy, queue


def profile_one(key: str, top: int) -> None:
    import cProfile
    import pstats

    import dcsim

    scenario = build(key)
    profiler = cProfile.Profile()
    profiler.enable()
    result = dcsim.run(scenario)
    profiler.disable()
    print(f"{key}: events={result.summary['events']} (times below include cProfile overhead)")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


# --- driver (parent process) ---------------------------------------------------------------------


def measure(key: str, repeat: int, timeout: float, cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Median figures over `repeat` fresh-process runs (stops repeating after a timeout or error)."""
    if key in cache:
        return cache[key]
    runs: list[dict[str, Any]] = []
    for i in range(repeat):
        record = spawn(__file__, key, timeout)
        if "timed_out" in record or "error" in record:
            summary = dict(record, runs=len(runs))
            what = (f"timed out after {timeout:g} s" if "timed_out" in record
                    else f"failed: {record['error']}")
            print(f"  {key}: run {i + 1} {what}", file=sys.stderr, flush=True)
            cache[key] = summary
            return summary
        runs.append(record)
        print(f"  {key}: run {i + 1}/{repeat} total {record['total_s']:.2f} s, cpu {record['cpu_s']:.2f} s, "
              f"peak {record['peak_mib']:.0f} MiB", file=sys.stderr, flush=True)
    med = dict(runs[0])
    for field in ("total_s", "sim_s", "cpu_s", "peak_mib", "process_s"):
        med[field] = statistics.median(r[field] for r in runs)
    med["runs"] = len(runs)
    med["total_s_all"] = [round(r["total_s"], 3) for r in runs]
    med["cpu_s_all"] = [round(r["cpu_s"], 3) for r in runs]
    cache[key] = med
    return med


def _f(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def fmt_row(label: str, m: dict[str, Any]) -> list[str]:
    spec = parse_key(m["key"])
    blank = [""] * (len(HEADER) - 5)
    if "timed_out" in m:
        return [label, f"{spec['jobs']:,}" if "jobs" in spec else "-",
                f"{spec['accelerators']:,}" if "accelerators" in spec else "-", spec["scheduler"],
                f"timed out (>{m['timeout_s']:g} s)", *blank]
    if "error" in m:
        return [label, "", "", spec["scheduler"], "error: " + m["error"], *blank]
    return [
        label, f"{m['jobs']:,}", f"{m['accelerators']:,}", m["scheduler"], f"{m['total_s']:.2f}",
        f"{m['sim_s']:.2f}", f"{m['cpu_s']:.2f}", f"{m['events']:,}", f"{m['events'] / m['sim_s']:,.0f}",
        f"{m['jobs'] / m['total_s']:,.0f}", f"{m['peak_mib']:.0f}", _f(m["busy_util_arrivals"], ".3f"),
        _f(m["busy_util"], ".3f"), _f(m["queue_mean_arrivals"], ",.1f"), f"{m['queue_max']:,}",
        str(m["runs"]),
    ]


HEADER = ["config", "jobs", "accels", "scheduler", "wall s", "sim s", "cpu s", "events", "events/s",
          "jobs/s", "peak MiB", "util arr", "util all", "queue arr", "queue max", "runs"]


def print_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(c.rjust(w) if i >= 4 or i in (1, 2) else c.ljust(w)
                                        for i, (c, w) in enumerate(zip(row, widths, strict=True))) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run (< 1 minute)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration; medians reported")
    parser.add_argument("--only", choices=["philly", "grid", "overload", "scaling"],
                        help="run one section only")
    parser.add_argument("--load", type=float, default=OFFERED_LOAD,
                        help=f"offered load of the scaling sweep (default {OFFERED_LOAD})")
    parser.add_argument("--timeout", type=float, default=600.0, help="per-run timeout in seconds")
    parser.add_argument("--json-out", help="also write all medians to this JSON file")
    parser.add_argument("--one", metavar="CONFIG", help="run one configuration in this process")
    parser.add_argument("--json", action="store_true", help="with --one: print one JSON line")
    parser.add_argument("--profile", metavar="CONFIG", help="cProfile one configuration in this process")
    parser.add_argument("--top", type=int, default=10, help="with --profile: functions to list")
    args = parser.parse_args()

    if args.one:
        record = run_one(args.one)
        print(json.dumps(record) if args.json else record)
        return
    if args.profile:
        profile_one(args.profile, args.top)
        return

    if args.quick:
        grid_jobs, grid_accels = [1000, 4000], [128, 1024]
        sweep = [1000, 2000, 4000]
        sweep_accels = 128
        overload_jobs, overload_accels = 4000, 128
        philly_limit: int | None = 5000
    else:
        grid_jobs, grid_accels = [10_000, 100_000], [1024, 8192]
        sweep = [5000, 10_000, 20_000, 40_000, 80_000]
        sweep_accels = 1024
        overload_jobs, overload_accels = 100_000, 1024
        philly_limit = None

    print(f"# dcsim training benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"# {machine()}")
    print(f"# {dcsim_source()}")
    print(f"# repeat={args.repeat} (medians), per-run timeout {args.timeout:.0f} s, quick={args.quick}")
    print("# wall s: dcsim.run() end to end (build, simulate, frames, summary); sim s: summary wall_time_s "
          "(build + simulate); cpu s: process CPU time of dcsim.run(); events/s = events / sim s; "
          "jobs/s = jobs / wall s; peak MiB: ru_maxrss of the fresh child process; util arr / queue arr: "
          "time-weighted busy fraction and queue length between first and last arrival; util all: "
          "summary busy utilization over the whole run (includes the drain); queue max: longest queue",
          flush=True)
    cache: dict[str, dict[str, Any]] = {}
    results: dict[str, Any] = {"machine": machine(), "dcsim": dcsim_source(), "date": time.strftime("%Y-%m-%d"),
                               "repeat": args.repeat, "quick": args.quick}
    rows: list[list[str]] = []
    started = time.perf_counter()

    if args.only in (None, "philly"):
        trace = philly_trace_path()
        if trace is None:
            print("# philly: skipped, trace file not found (see scenarios/philly.yaml for where to get it)")
        else:
            key = "philly:easy_backfill"
            if philly_limit is not None:  # --quick: the first jobs of the trace (workload.training.limit)
                print(f"# philly (quick): first {philly_limit} jobs only")
            m = measure_philly(key, args.repeat, args.timeout, cache, philly_limit)
            results["philly"] = m
            rows.append(fmt_row("philly" if philly_limit is None else f"philly[:{philly_limit}]", m))

    if args.only in (None, "grid"):
        results["grid"] = []
        for jobs in grid_jobs:
            for accels in grid_accels:
                for sched in SCHEDULERS:
                    m = measure(synthetic_key(jobs, accels, sched), args.repeat, args.timeout, cache)
                    results["grid"].append(m)
                    rows.append(fmt_row("grid", m))

    if args.only in (None, "overload"):
        results["overload"] = []
        for sched in SCHEDULERS:
            key = synthetic_key(overload_jobs, overload_accels, sched, OVERLOAD)
            m = measure(key, args.repeat, args.timeout, cache)
            results["overload"].append(m)
            rows.append(fmt_row(f"overload {OVERLOAD:g}", m))

    if rows:
        print("\n## Configurations\n")
        table = print_table(rows)
        results["table"] = table

    if args.only in (None, "scaling"):
        results["scaling"] = {}
        sweep_rows: list[list[str]] = []
        lines = []
        for sched in SCHEDULERS:
            ms = [measure(synthetic_key(n, sweep_accels, sched, args.load), args.repeat, args.timeout, cache)
                  for n in sweep]
            for m in ms:
                sweep_rows.append(fmt_row("scaling", m))
            ok = [m for m in ms if "total_s" in m]
            entry: dict[str, Any] = {"runs": ok}
            if len(ok) >= 2:
                ns = [m["jobs"] for m in ok]
                for field in ("total_s", "sim_s", "cpu_s"):
                    entry[f"slope_{field}"] = slope(ns, [m[field] for m in ok])
                entry["us_per_job_total"] = [1e6 * m["total_s"] / m["jobs"] for m in ok]
                entry["us_per_job_cpu"] = [1e6 * m["cpu_s"] / m["jobs"] for m in ok]
                verdict = "<= 1.15 (consistent with n log n or better)" if entry["slope_cpu_s"] <= 1.15 \
                    else "> 1.15 (grows faster than n log n)"
                per_job = ", ".join(f"{n}:{u:.0f}" for n, u in zip(ns, entry["us_per_job_cpu"], strict=True))
                lines.append(
                    f"{sched:14s} slope(wall)={entry['slope_total_s']:.3f} "
                    f"slope(sim)={entry['slope_sim_s']:.3f} "
                    f"slope(cpu)={entry['slope_cpu_s']:.3f} -> {verdict}; cpu us/job: {per_job}")
            if len(ok) < len(ms):
                lines.append(f"{sched:14s} {len(ms) - len(ok)} sweep size(s) did not finish (see table)")
            results["scaling"][sched] = entry
        print(f"\n## Scaling sweep at {sweep_accels:,} accelerators, offered load {args.load:g} "
              "(log-log slope of time vs jobs)\n")
        results["scaling_table"] = print_table(sweep_rows)
        print()
        for line in lines:
            print(line)

    print(f"\n# benchmark took {time.perf_counter() - started:.0f} s", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str) + "\n")


def measure_philly(key: str, repeat: int, timeout: float, cache: dict[str, dict[str, Any]],
                   limit: int | None) -> dict[str, Any]:
    if limit is None:
        return measure(key, repeat, timeout, cache)
    return measure(f"{key}:{limit}", repeat, timeout, cache)


if __name__ == "__main__":
    main()
