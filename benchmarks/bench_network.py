"""Flow-rate recomputation benchmark: microseconds per flow start and end on a big fat-tree.

Prints figures; asserts nothing. A 1,024-host three-tier fat-tree (16 hosts per leaf, 8 leaves and
8 aggregation switches per pod, 16 cores, 4:1 oversubscribed at the leaves) is filled with 10,000
concurrent flows between random host pairs; then `--churn` events each end one random flow and start
a new one. Reported: the time to start all 10,000 at one instant (one recomputation), the time per
end and per start at 10,000 concurrent flows (median and mean), and how many flows each event
re-filled (the size of its component).

Usage:
    python benchmarks/bench_network.py [--hosts 1024] [--flows 10000] [--churn 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import dcsim_source, machine  # the sibling benchmark's helpers


def main() -> None:
    from dcsim.engine.flows import FlowNetwork
    from dcsim.model.topology import fat_tree

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1024)
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--churn", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(machine())
    print(dcsim_source())
    names = [f"n-{i}" for i in range(args.hosts)]
    started = time.perf_counter()
    topology = fat_tree(names, hosts_per_leaf=16, leaves_per_pod=8, aggregations_per_pod=8, cores=16,
                        host_bandwidth=50e9, oversubscription=4.0)
    print(f"fat-tree: {args.hosts} hosts, {len(topology.graph) - args.hosts} switches, "
          f"{len(topology.links)} directed links, built in {time.perf_counter() - started:.2f} s")
    rng = np.random.default_rng(args.seed)
    pairs = rng.integers(0, args.hosts, size=(args.flows + args.churn, 2))
    paths = []
    started = time.perf_counter()
    for i, (a, b) in enumerate(pairs):
        if a == b:
            b = (b + 1) % args.hosts
        paths.append(topology.path(names[a], names[b], key=i))
    print(f"routes for {len(paths)} flows: {time.perf_counter() - started:.2f} s")

    net = FlowNetwork([link.bandwidth for link in topology.links])
    t0 = time.perf_counter()
    live = net.add_many(paths[: args.flows])
    fill = [time.perf_counter() - t0]
    ends: list[float] = []
    starts: list[float] = []
    refilled: list[int] = []
    for path in paths[args.flows:]:
        victim = live.pop(int(rng.integers(len(live))))
        before = net.recomputed_flows
        t0 = time.perf_counter()
        net.remove(victim)
        ends.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        live.append(net.add(path))
        starts.append(time.perf_counter() - t0)
        refilled.append(net.recomputed_flows - before)

    def show(label: str, values: list[float]) -> None:
        us = [v * 1e6 for v in values]
        print(f"{label:<44} median {statistics.median(us):>10,.0f} us   mean {statistics.fmean(us):>10,.0f} us   "
              f"n={len(us)}")

    show(f"{args.flows:,} flows started at once", fill)
    show(f"end at {args.flows:,} concurrent flows", ends)
    show(f"start at {args.flows:,} concurrent flows", starts)
    print(f"flows re-filled per end+start: median {statistics.median(refilled):,.0f} "
          f"(of {args.flows:,}); max link utilization {net.utilization().max():.3f}")


if __name__ == "__main__":
    main()
