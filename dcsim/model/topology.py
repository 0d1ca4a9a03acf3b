"""Network topologies on networkx: hosts (cluster nodes) and switches joined by full-duplex links.

Every link is two directed arcs, each a resource of `bandwidth` bytes/s with a `latency` in seconds,
so traffic in one direction does not slow the other. Builders cover a two-tier leaf-spine, a
three-tier fat-tree, a rail-optimized GPU pod and a 3D torus; `from_edge_list` and `from_graphml`
read a custom one. Oversubscription is the ratio of the bandwidth hosts can send into a switch to
the bandwidth the switch has towards the tier above (4 means 4:1).

Every host carries locality groups (`host_groups`), coarse to fine, for topology-aware placement:
hosts sharing a label are few hops apart. Builders record them (pod, leaf; a torus plane, then a
line); a custom topology groups the hosts linked to the same switches, under "partition-<i>" when
partitions (islands of hosts that cannot reach each other) are allowed.

Storage tiers are graph nodes of kind "storage" attached to switches (`attach`, default the top
tier). They are endpoints only: routes never pass through a storage node, so a tier attached to
several switches, several partitions or (in a torus) every host adds no shortcut between hosts.

Routing is shortest path by hop count (one breadth-first search per source node, cached); among
equal-cost paths (ECMP) a flow's deterministic hash picks each hop, so runs are reproducible and
different host pairs spread over the spines.
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
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
    source: str = "topology"
    down: set[str] = field(default_factory=set)  # failed switches: routes go around them
    down_links: set[tuple[str, str]] = field(default_factory=set)  # failed links, both directions

    @classmethod
    def from_edges(cls, hosts: Sequence[str], edges: Iterable[tuple[str, str, float, float, str]],
                   source: str = "topology", *, groups: Mapping[str, Sequence[str]] | None = None,
                   allow_partitions: bool = False) -> Topology:
        """Build and validate from (a, b, bandwidth, latency, tier) full-duplex links. `groups` gives
        hosts their locality labels, coarse to fine (see `host_groups`)."""
        graph = nx.DiGraph()
        graph.add_nodes_from(hosts, kind="host")
        topology = cls(graph, tuple(hosts), source=source)
        problems = []
        for a, b, bandwidth, latency, tier in edges:
            if not bandwidth > 0 or not math.isfinite(bandwidth):
                problems.append(f"{source}: link {a} - {b}: bandwidth must be > 0, got {bandwidth}")
                continue
            if not latency >= 0:
                problems.append(f"{source}: link {a} - {b}: latency must be >= 0, got {latency}")
                continue
            for node in (a, b):
                if not graph.has_node(node):
                    graph.add_node(node, kind="switch")
            topology._add_arc(a, b, float(bandwidth), float(latency), tier)
            topology._add_arc(b, a, float(bandwidth), float(latency), tier)
        if problems:
            raise ScenarioError(problems)
        topology.validate(source, allow_partitions)
        for host, labels in (groups or {}).items():
            graph.nodes[host]["groups"] = tuple(labels)
        return topology

    def validate(self, source: str = "topology", allow_partitions: bool = False) -> None:
        """Every host must reach every other (or, with `allow_partitions`, every island of the
        fabric must hold a host); storage nodes do not count as connections."""
        if not self.hosts:
            raise ScenarioError([f"{source}: has no hosts"])
        fabric = self._fabric()
        if not allow_partitions:
            unreachable = set(self.hosts) - nx.node_connected_component(fabric, self.hosts[0])
            if unreachable:
                names = ", ".join(sorted(unreachable)[:5])
                raise ScenarioError([f"{source}: disconnected: {len(unreachable)} hosts cannot reach "
                                     f"{self.hosts[0]} (e.g. {names})"])
        kind = self.graph.nodes
        for component in self._components(fabric):
            if not any(kind[node]["kind"] == "host" for node in component):
                names = ", ".join(component[:5])
                raise ScenarioError([f"{source}: disconnected: {len(component)} switches reach no cluster node "
                                     f"(e.g. {names})"])

    # --- structure ------------------------------------------------------------------------------
    def host_groups(self) -> dict[str, tuple[str, ...]]:
        """Locality labels of every host, coarse to fine: hosts that share a label are close (fewer hops).
        leaf_spine ("leaf-3",); fat_tree ("pod-0", "leaf-3"); rail_optimized ("pod-0",); torus_3d
        ("x1", "x1y2"); custom: the switches a host links to (joined by "+"), after "partition-<i>" when
        partitions are allowed. () for a host without group information."""
        nodes = self.graph.nodes
        return {host: tuple(nodes[host].get("groups", ())) for host in self.hosts}

    def partitions(self) -> list[tuple[str, ...]]:
        """Hosts of each island of the fabric (one tuple for a connected topology), each in `hosts`
        order, islands ordered by their first host."""
        position = {host: i for i, host in enumerate(self.hosts)}
        parts = []
        for component in self._components(self._fabric()):
            members = sorted((node for node in component if node in position), key=position.__getitem__)
            if members:
                parts.append(tuple(members))
        parts.sort(key=lambda part: position[part[0]])
        return parts

    def top_tier(self) -> tuple[str, ...]:
        """Switches farthest (in hops) from the hosts of their island: the spines of a leaf-spine, the
        cores of a fat-tree. An island without switches (a torus) contributes its hosts."""
        kind = self.graph.nodes
        distance: dict[str, int] = {}
        frontier = deque((host, 0) for host in self.hosts)
        distance.update(dict.fromkeys(self.hosts, 0))
        while frontier:
            node, hops = frontier.popleft()
            for other in self.graph.successors(node):
                if other not in distance and kind[other]["kind"] != "storage":
                    distance[other] = hops + 1
                    frontier.append((other, hops + 1))
        top: set[str] = set()
        for component in self._components(self._fabric()):
            switches = [node for node in component if kind[node]["kind"] == "switch"]
            if switches:
                highest = max(distance.get(node, 0) for node in switches)
                top.update(node for node in switches if distance.get(node, 0) == highest)
            else:
                top.update(component)
        return tuple(node for node in self.graph if node in top)

    def attach(self, name: str, switches: Sequence[str] | None, bandwidth: float, latency: float, *,
               source: str | None = None) -> None:
        """Add storage node `name` with a full-duplex link (tier "storage") to each of `switches`, each
        carrying `bandwidth / len(switches)`; None means the top tier (`top_tier`)."""
        where = source or self.source
        if name in self.graph:
            raise ScenarioError([f"{where}: storage tier {name!r} has the name of a node of the topology"])
        if not bandwidth > 0 or not math.isfinite(bandwidth):
            raise ScenarioError([f"{where}: storage tier {name!r}: bandwidth must be > 0, got {bandwidth}"])
        if not latency >= 0:
            raise ScenarioError([f"{where}: storage tier {name!r}: latency must be >= 0, got {latency}"])
        if switches is None:
            targets = list(self.top_tier())
        else:
            known = [node for node, kind in self.graph.nodes(data="kind") if kind == "switch"]
            known_set = set(known)
            bad = next((switch for switch in switches if switch not in known_set), None)
            if bad is not None:
                listed = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "") if known else "none"
                raise ScenarioError([f"{where}: storage tier {name!r} attaches to {bad!r}, which is not a switch "
                                     f"of the topology (switches: {listed})"])
            targets = list(dict.fromkeys(switches))
            if not targets:
                raise ScenarioError([f"{where}: storage tier {name!r} attaches to no switch"])
        self.graph.add_node(name, kind="storage")
        share = float(bandwidth) / len(targets)
        for switch in targets:
            self._add_arc(name, switch, share, float(latency), "storage")
            self._add_arc(switch, name, share, float(latency), "storage")
        self._predecessors.clear()

    def _add_arc(self, u: str, v: str, bandwidth: float, latency: float, tier: str) -> None:
        index = self._arc[(u, v)] = len(self.links)
        self.links.append(Link(index, u, v, bandwidth, latency, tier))
        self.graph.add_edge(u, v, index=index)

    def _fabric(self) -> nx.Graph:
        """The undirected graph without storage nodes."""
        undirected = self.graph.to_undirected(as_view=True)
        storage = {node for node, kind in self.graph.nodes(data="kind") if kind == "storage"}
        if not storage:
            return undirected
        return nx.subgraph_view(undirected, filter_node=lambda node: node not in storage)

    def _components(self, fabric: nx.Graph) -> list[list[str]]:
        """Connected components, each in graph order, ordered by their first node (deterministic)."""
        component_of: dict[str, int] = {}
        components: list[list[str]] = []
        for node in fabric:
            if node not in component_of:
                members = nx.node_connected_component(fabric, node)
                component_of.update(dict.fromkeys(members, len(components)))
                components.append([])
            components[component_of[node]].append(node)
        return components

    # --- routing --------------------------------------------------------------------------------
    def path(self, src: str, dst: str, key: int = 0) -> list[int]:
        """Directed link indexes from node `src` to node `dst` (hosts or storage nodes; empty for src ==
        dst). Among equal-cost paths (ECMP) the hash of (src, dst, key) picks one hop at a time, walking
        back from `dst`."""
        if src == dst:
            return []
        predecessors = self._predecessors.get(src)
        if predecessors is None:  # one breadth-first search per source node, reused for every destination
            if src not in self.graph:
                raise ScenarioError([f"no host named {src!r} in the topology"])
            predecessors = self._predecessors[src] = self._shortest_predecessors(src)
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

    def _shortest_predecessors(self, src: str) -> dict[str, list[str]]:
        """Breadth-first search from `src`: each reached node's predecessors on its shortest paths,
        sorted. Storage nodes other than `src` are reached but never passed through."""
        graph = self.graph
        kind = graph.nodes
        hops = {src: 0}
        predecessors: dict[str, list[str]] = {src: []}
        level = [src]
        depth = 0
        while level:
            depth += 1
            following = []
            for node in level:
                if node != src and kind[node]["kind"] == "storage":
                    continue
                for other in graph.successors(node):
                    if other in self.down or (node, other) in self.down_links:
                        continue
                    seen = hops.get(other)
                    if seen is None:
                        hops[other] = depth
                        predecessors[other] = [node]
                        following.append(other)
                    elif seen == depth:
                        predecessors[other].append(node)
            level = following
        for preds in predecessors.values():
            preds.sort()
        return predecessors

    def set_down(self, switch: str, down: bool) -> None:
        """A switch fails (routes avoid it from now on) or is repaired."""
        if down:
            self.down.add(switch)
        else:
            self.down.discard(switch)
        self._predecessors.clear()

    def set_link_down(self, a: str, b: str, down: bool) -> None:
        """A physical link (both directions) fails or is repaired."""
        for arc in ((a, b), (b, a)):
            if down:
                self.down_links.add(arc)
            else:
                self.down_links.discard(arc)
        self._predecessors.clear()

    def physical_links(self) -> list[tuple[str, str]]:
        """Each full-duplex link once, as (a, b) with a < b, host links included (storage links not)."""
        kind = self.graph.nodes
        return sorted({(min(u, v), max(u, v)) for u, v in self._arc
                       if kind[u]["kind"] != "storage" and kind[v]["kind"] != "storage"})

    def switches(self) -> list[str]:
        return [node for node, kind in self.graph.nodes(data="kind") if kind == "switch"]

    def cut_off(self) -> list[str]:
        """Hosts outside the largest island of hosts the failed switches leave (none when none failed)."""
        if not self.down and not self.down_links:
            return []
        fabric = self.graph.to_undirected(as_view=True)
        alive = nx.subgraph_view(fabric, filter_node=lambda node: node not in self.down,
                                 filter_edge=lambda u, v: (u, v) not in self.down_links)
        hosts = set(self.hosts)
        islands = sorted((sorted(hosts & component) for component in nx.connected_components(alive)),
                         key=lambda island: (-len(island), island[:1]))
        return [host for island in islands[1:] for host in island]

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
    groups = {host: (f"leaf-{i // hosts_per_leaf}",) for i, host in enumerate(hosts)}
    return Topology.from_edges(hosts, edges, "leaf_spine", groups=groups)


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
    groups = {host: (f"pod-{i // hosts_per_leaf // leaves_per_pod}", f"leaf-{i // hosts_per_leaf}")
              for i, host in enumerate(hosts)}
    return Topology.from_edges(hosts, edges, "fat_tree", groups=groups)


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
    groups = {host: (f"pod-{i // per_pod}",) for i, host in enumerate(hosts)}
    return Topology.from_edges(hosts, edges, "rail_optimized", groups=groups)


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
    groups = {host: (f"x{x}", f"x{x}y{y}") for (x, y, _), host in at.items()}  # a plane, then a line
    return Topology.from_edges(hosts, [(a, b, link_bandwidth, latency, "torus") for a, b in sorted(edges)],
                               "torus_3d", groups=groups)


def from_edge_list(hosts: Sequence[str], path: Path, *, allow_partitions: bool = False) -> Topology:
    """Whitespace-separated lines `a b bandwidth_bytes_per_s [latency_s]`; '#' starts a comment.
    With `allow_partitions`, islands of hosts that cannot reach each other are accepted."""
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
    return _custom(hosts, edges, str(path), allow_partitions)


def from_graphml(hosts: Sequence[str], path: Path, *, allow_partitions: bool = False) -> Topology:
    """A GraphML file whose edges carry `bandwidth` (bytes/s) and optionally `latency` (s).
    With `allow_partitions`, islands of hosts that cannot reach each other are accepted."""
    try:
        graph = nx.read_graphml(path)
    except (OSError, nx.NetworkXError, ValueError) as exc:
        raise ScenarioError([f"{path}: not a readable GraphML file: {exc}"]) from None
    edges = []
    for a, b, data in graph.edges(data=True):
        if "bandwidth" not in data:
            raise ScenarioError([f"{path}: edge {a} - {b}: missing attribute 'bandwidth' (bytes/s)"])
        edges.append((str(a), str(b), float(data["bandwidth"]), float(data.get("latency", 1e-6)), "custom"))
    return _custom(hosts, edges, str(path), allow_partitions)


def _custom(hosts: Sequence[str], edges: list[tuple[str, str, float, float, str]], source: str,
            allow_partitions: bool) -> Topology:
    """Names that are not cluster nodes are switches; one with a single link is taken for a typo.
    A host's group is the set of switches it links to (plus its partition, when partitions are allowed)."""
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
    topology = Topology.from_edges(hosts, edges, source, allow_partitions=allow_partitions)
    graph = topology.graph
    partition_of = {}
    if allow_partitions:
        for index, part in enumerate(topology.partitions()):
            partition_of.update(dict.fromkeys(part, f"partition-{index}"))
    for host in topology.hosts:
        switches = sorted(node for node in graph.successors(host) if graph.nodes[node]["kind"] == "switch")
        labels = [partition_of[host]] if host in partition_of else []
        if switches:
            labels.append("+".join(switches))
        graph.nodes[host]["groups"] = tuple(labels)
    return topology


def _positive(**values: float) -> None:
    bad = [f"{name} must be > 0, got {value}" for name, value in values.items() if not value > 0]
    if bad:
        raise ScenarioError([f"topology: {problem}" for problem in bad])
