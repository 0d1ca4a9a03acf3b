"""Flow-rate recomputation benchmark: microseconds per flow start and end on a big fat-tree.

Prints figures; asserts nothing. A 1,024-host three-tier fat-tree (16 hosts per leaf, 8 leaves and
8 aggregation switches per pod, 16 cores, 4:1 oversubscribed at the leaves) is filled with 10,000
concurrent flows between random host pairs; then `--churn` events each end one random flow and start
a new one. Reported: the time to start all 10,000 at one instant (one recomputation), the time per
end and per start at 10,000 concurrent flows (median and mean, wall clock and CPU), how many flows
each event re-derived (the component it refilled) and how many it moved (see dcsim/engine/flows.py).
The first refill in a fresh checkout compiles the solver (numba) and is left out: a warm-up
recomputation on a small network runs before any timing.

The same fill and the first `--reference` events are replayed with the earlier algorithm (a copy of
it is kept below: it refilled the whole connected component of a change by vectorised progressive
filling), timed the same way, and its rates are compared with the current solver's.

Usage:
    python benchmarks/bench_network.py [--hosts 1024] [--flows 10000] [--churn 1000] [--seed 1]
                                       [--reference 20]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import dcsim_source, machine  # the sibling benchmark's helpers

from dcsim.engine.flows import FlowNetwork


class EarlierFlowNetwork:
    """The numpy solver of commit 343d027, for comparison: every start
    or end refills its whole connected component by vectorised progressive filling, one round per
    distinct rate level."""

    def __init__(self, capacities: Sequence[float]) -> None:
        self.capacity = np.asarray(capacities, dtype=float)
        self.flows: dict[int, np.ndarray] = {}
        self.rates: dict[int, float] = {}
        self.caps: dict[int, float] = {}
        self.carried = np.zeros(len(self.capacity))
        self.on_link: list[set[int]] = [set() for _ in range(len(self.capacity))]
        self._next = 0
        self.recomputed_flows = 0

    def add(self, links: Sequence[int], cap: float = math.inf) -> int:
        return self.add_many([links], [cap])[0]

    def add_many(self, paths: Sequence[Sequence[int]], caps: Sequence[float] | None = None) -> list[int]:
        ids = []
        touched: set[int] = set()
        for index, links in enumerate(paths):
            flow = self._next
            self._next += 1
            path = np.asarray(sorted(set(links)), dtype=np.int64)
            self.flows[flow] = path
            cap = math.inf if caps is None else float(caps[index])
            if cap < math.inf:
                self.caps[flow] = cap
            for link in path:
                self.on_link[link].add(flow)
            touched.update(int(link) for link in path)
            ids.append(flow)
        self._refill(self._component(touched))
        return ids

    def remove(self, flow: int) -> None:
        path = self.flows.pop(flow)
        rate = self.rates.pop(flow, 0.0)
        self.caps.pop(flow, None)
        if math.isfinite(rate):
            self.carried[path] -= rate
        for link in path:
            self.on_link[link].discard(flow)
        self._refill(self._component(set(int(link) for link in path)))

    def _component(self, links: set[int]) -> list[int]:
        seen_links = set(links)
        stack = list(seen_links)
        flows: set[int] = set()
        while stack:
            for flow in self.on_link[stack.pop()]:
                if flow in flows:
                    continue
                flows.add(flow)
                for link in self.flows[flow]:
                    link = int(link)
                    if link not in seen_links:
                        seen_links.add(link)
                        stack.append(link)
        return sorted(flows)

    def _refill(self, flows: list[int]) -> None:
        if not flows:
            return
        self.recomputed_flows += len(flows)
        paths = [self.flows[f] for f in flows]
        lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
        entry_link = np.concatenate(paths)
        entry_flow = np.repeat(np.arange(len(flows)), lengths)
        links_used, local = np.unique(entry_link, return_inverse=True)
        flow_ptr = np.concatenate(([0], np.cumsum(lengths))).tolist()
        order = np.argsort(local, kind="stable")
        by_link = entry_flow[order]
        link_ptr = np.concatenate(([0], np.cumsum(np.bincount(local, minlength=len(links_used))))).tolist()
        remaining = self.capacity[links_used].copy()
        counts = np.bincount(local, minlength=len(links_used)).astype(float)
        caps = np.fromiter((self.caps.get(f, math.inf) for f in flows), dtype=float, count=len(flows))
        rate = caps.copy()
        unfrozen = lengths > 0
        left = int(unfrozen.sum())
        while left:
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(counts > 0, remaining / counts, np.inf)
            level = float(share.min())
            capped = np.flatnonzero(unfrozen & (caps <= level))
            if len(capped):
                level = float(caps[capped].min())
                frozen = capped[caps[capped] <= level * (1 + 1e-12)]
            else:
                bottlenecks = np.flatnonzero(share <= level * (1 + 1e-12))
                candidates = np.unique(np.concatenate([by_link[link_ptr[k]:link_ptr[k + 1]] for k in bottlenecks]))
                frozen = candidates[unfrozen[candidates]]
            rate[frozen] = level
            unfrozen[frozen] = False
            left -= len(frozen)
            freed = np.bincount(np.concatenate([local[flow_ptr[f]:flow_ptr[f + 1]] for f in frozen.tolist()]),
                                minlength=len(links_used))
            counts -= freed
            remaining -= freed * level
            np.maximum(remaining, 0.0, out=remaining)
        for flow, value, path in zip(flows, rate.tolist(), paths, strict=True):
            old = self.rates.get(flow)
            if old == value:
                continue
            self.rates[flow] = value
            if math.isfinite(value):
                self.carried[path] += value - (old if old is not None and math.isfinite(old) else 0.0)


def timed(call: Callable[..., object], *args: object) -> tuple[float, float]:
    """(wall, CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    call(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def start(net: FlowNetwork | EarlierFlowNetwork, live: list[int], path: Sequence[int]) -> None:
    live.append(net.add(path))


def main() -> None:
    from dcsim.model.topology import fat_tree

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1024)
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--churn", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reference", type=int, default=20,
                        help="events replayed with the earlier algorithm (about 0.4 s each at 10,000 flows; 0: skip)")
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
    # The flow each event ends, as an index into the live flows (the same for both solvers).
    victims = [int(rng.integers(args.flows)) for _ in range(args.churn)]
    capacities = [link.bandwidth for link in topology.links]

    warm = FlowNetwork([1.0])  # loads (or, the first time, compiles) the solver before any timing
    warm.add([0], cap=0.5)
    net = FlowNetwork(capacities)
    live: list[int] = []
    fill = timed(lambda: live.extend(net.add_many(paths[: args.flows])))
    ends: list[tuple[float, float]] = []
    starts: list[tuple[float, float]] = []
    refilled: list[int] = []
    moved: list[int] = []
    rates_after_reference: dict[int, float] = {}
    for event, (victim, path) in enumerate(zip(victims, paths[args.flows:], strict=True)):
        if event == args.reference:
            rates_after_reference = dict(net.rates)
        flow = live.pop(victim)
        before = net.recomputed_flows
        ends.append(timed(net.remove, flow))
        moved.append(len(net.changed))
        starts.append(timed(start, net, live, path))
        moved.append(len(net.changed))
        refilled.append(net.recomputed_flows - before)
    if len(victims) <= args.reference:
        rates_after_reference = dict(net.rates)

    def us(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1e6:>9,.0f} us   mean {statistics.fmean(values) * 1e6:>9,.0f} us"

    def show(label: str, samples: list[tuple[float, float]]) -> None:
        print(f"{label:<40} wall {us([s[0] for s in samples])}   cpu {us([s[1] for s in samples])}   n={len(samples)}")

    print("\ncurrent solver (dcsim/engine/flows.py: compiled progressive filling of the change's component)")
    show(f"{args.flows:,} flows started at once", [fill])
    show(f"end at {args.flows:,} concurrent flows", ends)
    show(f"start at {args.flows:,} concurrent flows", starts)
    print(f"flows re-derived per end+start: median {statistics.median(refilled):,.0f}, "
          f"mean {statistics.fmean(refilled):,.0f} (of {args.flows:,}); flows whose rate moved per end or start: "
          f"median {statistics.median(moved):,.0f}, mean {statistics.fmean(moved):,.0f}; "
          f"max link utilization {net.utilization().max():.6f}")

    if args.reference <= 0:
        return
    count = min(args.reference, len(victims))
    old = EarlierFlowNetwork(capacities)
    old_live: list[int] = []
    old_fill = timed(lambda: old_live.extend(old.add_many(paths[: args.flows])))
    old_ends: list[tuple[float, float]] = []
    old_starts: list[tuple[float, float]] = []
    for victim, path in zip(victims[:count], paths[args.flows:args.flows + count], strict=True):
        flow = old_live.pop(victim)
        old_ends.append(timed(old.remove, flow))
        old_starts.append(timed(start, old, old_live, path))
    worst = max(abs(rate - old.rates[flow]) / old.rates[flow] for flow, rate in rates_after_reference.items())
    print(f"\nearlier algorithm (component refill, copied in this file), the same fill and first {count} events")
    show(f"{args.flows:,} flows started at once", [old_fill])
    show(f"end at {args.flows:,} concurrent flows", old_ends)
    show(f"start at {args.flows:,} concurrent flows", old_starts)
    ratio = statistics.median([s[0] for s in old_ends + old_starts]) / statistics.median(
        [s[0] for s in ends[:count] + starts[:count]])
    print(f"speed-up on those {count} events (median wall, end and start together): {ratio:,.1f}x; "
          f"largest relative difference between the two solvers' rates after them: {worst:.1e}")


if __name__ == "__main__":
    main()
