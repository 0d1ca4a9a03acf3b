"""Network topologies on networkx: hosts (cluster nodes) and switches joined by full-duplex links.

Every link is two directed arcs, each a resource of `bandwidth` bytes/s with a `latency` in seconds,
so traffic in one direction does not slow the other. Builders cover a two-tier leaf-spine, a
three-tier fat-tree, a rail-optimized GPU pod and a 3D torus; `from_edge_list` and `from_graphml`
read a custom one. Oversubscription is the ratio of the bandwidth hosts can send into a switch to
the bandwidth the switch has towards the tier above (4 means 4:1).

Routing is shortest path by hop count (one breadth-first search per source host, cached); among
equal-cost paths (ECMP) a flow's deterministic hash picks each hop, so runs are reproducible and
different host pairs spread over the spines.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import networkx as nx

from dcsim.errors import ScenarioError


@dataclass(frozen=True, slots=True)
class Link:
    """One direction of a physical link."""

    index: int
    source: str
    target: str
    bandwidth: float  # bytes/s
    latency: float  # seconds
    tier: str


@dataclass
class Topology:
    graph: nx.DiGraph
    hosts: tuple[str, ...]
    links: list[Link] = field(default_factory=list)
    _arc: dict[tuple[str, str], int] = field(default_factory=dict)
    _predecessors: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @classmethod
    def from_edges(cls, hosts: Sequence[str], edges: Iterable[tuple[str, str, float, float, str]],
                   source: str = "topology") -> Topology:
        """Build and validate from (a, b, bandwidth, latency, tier) full-duplex links."""
        graph = nx.DiGraph()
        graph.add_nodes_from(hosts, kind="host")
        topology = cls(graph, tuple(hosts))
        problems = []
        for a, b, bandwidth, latency, tier in edges:
            if not bandwidth > 0 or not math.isfinite(bandwidth):
                problems.append(f"{source}: link {a} - {b}: bandwidth must be > 0, got {bandwidth}")
                continue
            if not latency >= 0:
                problems.append(f"{source}: link {a} - {b}: latency must be >= 0, got {latency}")
                continue
            for u, v in ((a, b), (b, a)):
                if not graph.has_node(u):
                    graph.add_node(u, kind="switch")
                topology._arc[(u, v)] = len(topology.links)
                topology.links.append(Link(len(topology.links), u, v, float(bandwidth), float(latency), tier))
                graph.add_edge(u, v, index=topology._arc[(u, v)])
        if problems:
            raise ScenarioError(problems)
        topology.validate(source)
        return topology

    def validate(self, source: str = "topology") -> None:
        if not self.hosts:
            raise ScenarioError([f"{source}: has no hosts"])
        unreachable = set(self.hosts) - nx.node_connected_component(self.graph.to_undirected(as_view=True),
                                                                     self.hosts[0])
        if unreachable:
            names = ", ".join(sorted(unreachable)[:5])
            raise ScenarioError([f"{source}: disconnected: {len(unreachable)} hosts cannot reach {self.hosts[0]} "
                                 f"(e.g. {names})"])

    # --- routing --------------------------------------------------------------------------------
    def path(self, src: str, dst: str, key: int = 0) -> list[int]:
        """Directed link indexes from host `src` to host `dst` (empty for src == dst). Among equal-cost
        paths (ECMP) the hash of (src, dst, key) picks one hop at a time, walking back from `dst`."""
        if src == dst:
            return []
        predecessors = self._predecessors.get(src)
        if predecessors is None:  # one breadth-first search per source host, reused for every destination
            if src not in self.graph:
                raise ScenarioError([f"no host named {src!r} in the topology"])
            predecessors = self._predecessors[src] = {
                node: sorted(preds) for node, preds in nx.predecessor(self.graph, src).items()}
        if dst not in predecessors:
            raise ScenarioError([f"no route from {src!r} to {dst!r}"])
        seed = zlib.crc32(f"{src}>{dst}>{key}".encode())
        nodes = [dst]
        while nodes[-1] != src:
            choices = predecessors[nodes[-1]]
            nodes.append(choices[seed % len(choices)])
            seed //= max(len(choices), 1)
        nodes.reverse()
        arc = self._arc
        return [arc[(u, v)] for u, v in pairwise(nodes)]

    def path_latency(self, links: Sequence[int]) -> float:
        return sum(self.links[i].latency for i in links)

    def bottleneck(self, links: Sequence[int]) -> float:
        return min((self.links[i].bandwidth for i in links), default=math.inf)


# --- builders ------------------------------------------------------------------------------------


def leaf_spine(hosts: Sequence[str], *, hosts_per_leaf: int, spines: int, host_bandwidth: float,
               oversubscription: float = 1.0, host_latency: float = 1e-6, fabric_latency: float = 1e-6) -> Topology:
    """Each leaf serves `hosts_per_leaf` hosts and has one uplink to every spine, sized so that
    hosts_per_leaf x host_bandwidth = oversubscription x spines x uplink."""
    _positive(hosts_per_leaf=hosts_per_leaf, spines=spines, host_bandwidth=host_bandwidth,
              oversubscription=oversubscription)
    uplink = hosts_per_leaf * host_bandwidth / (spines * oversubscription)
    edges = []
    for i, host in enumerate(hosts):
        edges.append((host, f"leaf-{i // hosts_per_leaf}", host_bandwidth, host_latency, "host"))
    for leaf in range(math.ceil(len(hosts) / hosts_per_leaf)):
        for spine in range(spines):
            edges.append((f"leaf-{leaf}", f"spine-{spine}", uplink, fabric_latency, "spine"))
    return Topology.from_edges(hosts, edges, "leaf_spine")


def fat_tree(hosts: Sequence[str], *, hosts_per_leaf: int, leaves_per_pod: int, aggregations_per_pod: int,
             cores: int, host_bandwidth: float, oversubscription: float = 1.0, core_oversubscription: float = 1.0,
             host_latency: float = 1e-6, fabric_latency: float = 1e-6) -> Topology:
    """Three tiers: leaves (top of rack) -> aggregation switches of their pod -> core switches.
    Each leaf links to every aggregation switch of its pod; each aggregation switch to every core.
    `oversubscription` applies at the leaves' uplinks, `core_oversubscription` at the pods' uplinks."""
    _positive(hosts_per_leaf=hosts_per_leaf, leaves_per_pod=leaves_per_pod,
              aggregations_per_pod=aggregations_per_pod, cores=cores, host_bandwidth=host_bandwidth,
              oversubscription=oversubscription, core_oversubscription=core_oversubscription)
    leaf_up = hosts_per_leaf * host_bandwidth / (aggregations_per_pod * oversubscription)
    agg_down = leaves_per_pod * leaf_up  # what an aggregation switch receives from its leaves
    core_up = agg_down / (cores * core_oversubscription)
    edges = [(host, f"leaf-{i // hosts_per_leaf}", host_bandwidth, host_latency, "host")
             for i, host in enumerate(hosts)]
    leaves = math.ceil(len(hosts) / hosts_per_leaf)
    for leaf in range(leaves):
        pod = leaf // leaves_per_pod
        for agg in range(aggregations_per_pod):
            edges.append((f"leaf-{leaf}", f"agg-{pod}-{agg}", leaf_up, fabric_latency, "aggregation"))
    for pod in range(math.ceil(leaves / leaves_per_pod)):
        for agg in range(aggregations_per_pod):
            for core in range(cores):
                edges.append((f"agg-{pod}-{agg}", f"core-{core}", core_up, fabric_latency, "core"))
    return Topology.from_edges(hosts, edges, "fat_tree")


def rail_optimized(hosts: Sequence[str], *, rails: int, rail_bandwidth: float, spines: int,
                   oversubscription: float = 1.0, hosts_per_pod: int | None = None, host_latency: float = 1e-6,
                   fabric_latency: float = 1e-6) -> Topology:
    """A GPU pod in which NIC r of every host goes to rail switch r (one leaf per rail); rail switches
    of all pods meet at the spines. Same-rail traffic inside a pod crosses one switch."""
    _positive(rails=rails, rail_bandwidth=rail_bandwidth, spines=spines, oversubscription=oversubscription)
    per_pod = hosts_per_pod or len(hosts)
    uplink = per_pod * rail_bandwidth / (spines * oversubscription)
    edges = []
    for i, host in enumerate(hosts):
        for rail in range(rails):
            edges.append((host, f"rail-{i // per_pod}-{rail}", rail_bandwidth, host_latency, "host"))
    for pod in range(math.ceil(len(hosts) / per_pod)):
        for rail in range(rails):
            for spine in range(spines):
                edges.append((f"rail-{pod}-{rail}", f"spine-{spine}", uplink, fabric_latency, "spine"))
    return Topology.from_edges(hosts, edges, "rail_optimized")


def torus_3d(hosts: Sequence[str], *, dims: tuple[int, int, int], link_bandwidth: float,
             latency: float = 1e-6) -> Topology:
    """TPU-style 3D torus: host (x, y, z) links to its six neighbours, with wrap-around."""
    x_size, y_size, z_size = dims
    if x_size * y_size * z_size != len(hosts):
        raise ScenarioError([f"torus_3d: dims {dims} hold {x_size * y_size * z_size} hosts, the cluster has "
                             f"{len(hosts)}"])
    _positive(link_bandwidth=link_bandwidth)
    at = {(x, y, z): hosts[(x * y_size + y) * z_size + z]
          for x in range(x_size) for y in range(y_size) for z in range(z_size)}
    edges = set()
    for (x, y, z), host in at.items():
        for dx, dy, dz in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
            other = at[((x + dx) % x_size, (y + dy) % y_size, (z + dz) % z_size)]
            if other != host:
                edges.add(tuple(sorted((host, other))))
    return Topology.from_edges(hosts, [(a, b, link_bandwidth, latency, "torus") for a, b in sorted(edges)],
                               "torus_3d")


def from_edge_list(hosts: Sequence[str], path: Path) -> Topology:
    """Whitespace-separated lines `a b bandwidth_bytes_per_s [latency_s]`; '#' starts a comment."""
    edges = []
    problems = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read topology file: {exc.strerror or exc}"]) from None
    for number, line in enumerate(lines, start=1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        try:
            a, b, bandwidth = parts[0], parts[1], float(parts[2])
            latency = float(parts[3]) if len(parts) > 3 else 1e-6
        except (IndexError, ValueError):
            problems.append(f"{path}:{number}: expected 'a b bandwidth [latency]', got {line.strip()!r}")
            continue
        edges.append((a, b, bandwidth, latency, "custom"))
    if problems:
        raise ScenarioError(problems)
    return _custom(hosts, edges, str(path))


def from_graphml(hosts: Sequence[str], path: Path) -> Topology:
    """A GraphML file whose edges carry `bandwidth` (bytes/s) and optionally `latency` (s)."""
    try:
        graph = nx.read_graphml(path)
    except (OSError, nx.NetworkXError, ValueError) as exc:
        raise ScenarioError([f"{path}: not a readable GraphML file: {exc}"]) from None
    edges = []
    for a, b, data in graph.edges(data=True):
        if "bandwidth" not in data:
            raise ScenarioError([f"{path}: edge {a} - {b}: missing attribute 'bandwidth' (bytes/s)"])
        edges.append((str(a), str(b), float(data["bandwidth"]), float(data.get("latency", 1e-6)), "custom"))
    return _custom(hosts, edges, str(path))


def _custom(hosts: Sequence[str], edges: list[tuple[str, str, float, float, str]], source: str) -> Topology:
    """Names that are not cluster nodes are switches; one with a single link is taken for a typo."""
    degree: dict[str, int] = {}
    for a, b, *_ in edges:
        degree[a] = degree.get(a, 0) + 1
        degree[b] = degree.get(b, 0) + 1
    host_set = set(hosts)
    dangling = sorted(name for name, links in degree.items() if links == 1 and name not in host_set)
    if dangling:
        raise ScenarioError([f"{source}: link to {dangling[0]!r}, which is not a cluster node and has no other "
                             f"link (a misspelt node name?)"])
    named = set(degree)
    missing = [h for h in hosts if h not in named]
    if missing:
        raise ScenarioError([f"{source}: cluster node {missing[0]!r} has no link ({len(missing)} nodes without; "
                             "name links after the cluster's nodes, e.g. pool-0)"])
    return Topology.from_edges(hosts, edges, source)


def _positive(**values: float) -> None:
    bad = [f"{name} must be > 0, got {value}" for name, value in values.items() if not value > 0]
    if bad:
        raise ScenarioError([f"topology: {problem}" for problem in bad])
