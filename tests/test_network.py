"""Topologies and max-min fair flow rates (the network layer under the fabric and the training traffic)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from dcsim.engine import flows, flows_fill
from dcsim.engine.flows import FlowNetwork, ring_allreduce_time
from dcsim.errors import ScenarioError
from dcsim.model.topology import (
    Topology,
    fat_tree,
    from_edge_list,
    from_graphml,
    leaf_spine,
    rail_optimized,
    torus_3d,
)

GB = 1e9


def hosts(n: int) -> list[str]:
    return [f"n-{i}" for i in range(n)]


def network(topology: Topology) -> FlowNetwork:
    return FlowNetwork([link.bandwidth for link in topology.links])


def test_two_equal_flows_on_one_bottleneck_each_get_half() -> None:
    net = FlowNetwork([10.0, 100.0, 100.0])
    a, b = net.add([0, 1]), net.add([0, 2])
    assert net.rate(a) == net.rate(b) == 5.0


def test_max_min_fairness_on_the_textbook_three_flow_case() -> None:
    # A crosses both links, B only the first (capacity 1), C only the second (capacity 2):
    # the first link is the bottleneck for A and B (1/2 each); C takes what A leaves of the second.
    net = FlowNetwork([1.0, 2.0])
    a, b, c = net.add([0, 1]), net.add([0]), net.add([1])
    assert (net.rate(a), net.rate(b), net.rate(c)) == pytest.approx((0.5, 0.5, 1.5))
    net.remove(b)  # A is now limited by the second link, shared with C
    assert (net.rate(a), net.rate(c)) == pytest.approx((1.0, 1.0))
    assert net.utilization() == pytest.approx([1.0, 1.0])


def test_only_the_component_of_a_change_is_recomputed() -> None:
    net = FlowNetwork([1.0, 1.0, 1.0])
    net.add([0])
    net.add([1])
    before = net.recomputed_flows
    net.add([1, 2])  # shares link 1 with the second flow only
    assert net.recomputed_flows - before == 2


def test_a_4_to_1_oversubscribed_uplink_quarters_cross_leaf_flows() -> None:
    topology = leaf_spine(hosts(8), hosts_per_leaf=4, spines=1, host_bandwidth=100 * GB, oversubscription=4.0)
    net = network(topology)
    cross = [net.add(topology.path(f"n-{i}", f"n-{4 + i}")) for i in range(4)]
    local = net.add(topology.path("n-4", "n-5"))  # inside leaf 1, in its own direction of the host links
    assert [net.rate(f) for f in cross] == pytest.approx([25 * GB] * 4)
    assert net.rate(local) == pytest.approx(75 * GB)  # n-5's downlink carries 25 GB/s of cross traffic


def test_fat_tree_paths_climb_only_as_high_as_needed() -> None:
    topology = fat_tree(hosts(32), hosts_per_leaf=4, leaves_per_pod=2, aggregations_per_pod=2, cores=2,
                        host_bandwidth=50 * GB, oversubscription=2.0)
    assert len(topology.path("n-0", "n-1")) == 2  # same leaf
    assert len(topology.path("n-0", "n-4")) == 4  # same pod, other leaf
    assert len(topology.path("n-0", "n-8")) == 6  # other pod
    uplinks = {topology.links[topology.path(f"n-{i}", "n-8")[1]].target for i in range(4)}
    assert len(uplinks) == 2  # ECMP spreads hosts over both aggregation switches
    leaf_up = next(link for link in topology.links if link.tier == "aggregation" and link.source == "leaf-0")
    assert leaf_up.bandwidth == pytest.approx(4 * 50 * GB / (2 * 2.0))


def test_rail_optimized_and_torus_shapes() -> None:
    rails = rail_optimized(hosts(4), rails=8, rail_bandwidth=50 * GB, spines=2)
    assert len(rails.path("n-0", "n-1")) == 2  # over one rail switch
    torus = torus_3d(hosts(27), dims=(3, 3, 3), link_bandwidth=100 * GB)
    degrees = dict(torus.graph.out_degree(torus.hosts))
    assert set(degrees.values()) == {6}
    assert len(torus.path("n-0", "n-13")) == 3  # (0,0,0) to (1,1,1)


def test_ring_allreduce_time_on_an_idle_network() -> None:
    assert ring_allreduce_time(4, 1 * GB, 100 * GB, 1e-6) == pytest.approx(1.5 * 0.01 + 6e-6)
    assert ring_allreduce_time(1, 1 * GB, 100 * GB, 1e-6) == 0.0


def test_custom_topologies_from_files(tmp_path: Path) -> None:
    edges = tmp_path / "net.txt"
    edges.write_text("# a b bandwidth latency\nn-0 sw 1e10 2e-6\nn-1 sw 1e10\n")
    topology = from_edge_list(hosts(2), edges)
    assert topology.path_latency(topology.path("n-0", "n-1")) == pytest.approx(3e-6)
    graph = nx.Graph()
    graph.add_edge("n-0", "n-1", bandwidth=5e9)
    graphml = tmp_path / "net.graphml"
    nx.write_graphml(graph, graphml)
    assert from_graphml(hosts(2), graphml).bottleneck(from_graphml(hosts(2), graphml).path("n-0", "n-1")) == 5e9


@pytest.mark.parametrize(("text", "message"), [
    ("n-0 sw 0\nn-1 sw 1e10\n", "bandwidth must be > 0, got 0.0"),
    ("n-0 sw 1e10\nn-1 sw2 1e10\nsw2 sw3 1e10\nsw3 n-1 1e10\n", "link to 'sw', which is not a cluster node"),
    ("n-0 n-0x 1e10\nn-0x n-0y 1e10\nn-1 n-1x 1e10\nn-1x n-0y 1e10\n", None),
    ("n-0 s1 1e10\ns1 s2 1e10\ns2 n-0 1e10\nn-1 s3 1e10\ns3 s4 1e10\ns4 n-1 1e10\n", "disconnected"),
    ("n-0 sw\n", "expected 'a b bandwidth \\[latency\\]'"),
    ("n-0 sw 1e10\nsw n-0 1e10\n", "cluster node 'n-1' has no link"),
])
def test_bad_topologies_fail_in_one_line(tmp_path: Path, text: str, message: str | None) -> None:
    path = tmp_path / "net.txt"
    path.write_text(text)
    if message is None:
        assert from_edge_list(hosts(2), path).path("n-0", "n-1")
        return
    with pytest.raises(ScenarioError, match=message) as info:
        from_edge_list(hosts(2), path)
    assert len(str(info.value).splitlines()) == 1


def test_bad_builder_parameters_fail() -> None:
    with pytest.raises(ScenarioError, match="oversubscription must be > 0"):
        leaf_spine(hosts(4), hosts_per_leaf=2, spines=1, host_bandwidth=GB, oversubscription=0)
    with pytest.raises(ScenarioError, match=r"dims \(2, 2, 2\) hold 8 hosts, the cluster has 9"):
        torus_3d(hosts(9), dims=(2, 2, 2), link_bandwidth=GB)


def test_rates_never_exceed_capacity_on_random_flows() -> None:
    topology = fat_tree(hosts(64), hosts_per_leaf=8, leaves_per_pod=2, aggregations_per_pod=2, cores=4,
                        host_bandwidth=10 * GB, oversubscription=4.0)
    net = network(topology)
    rng = np.random.default_rng(1)
    live = []
    for _ in range(300):
        src, dst = rng.choice(64, size=2, replace=False)
        live.append(net.add(topology.path(f"n-{src}", f"n-{dst}", key=int(rng.integers(1000)))))
        if len(live) > 100:
            net.remove(live.pop(int(rng.integers(len(live)))))
    assert net.utilization().max() <= 1 + 1e-9
    # Max-min: every flow has a saturated link on its path on which it has the largest rate.
    used = net.utilization()
    on_link: dict[int, list[int]] = {}
    for flow, path in net.flows.items():
        for link in path.tolist():
            on_link.setdefault(link, []).append(flow)
    for flow, path in net.flows.items():
        saturated = [link for link in path.tolist() if used[link] > 1 - 1e-9]
        assert saturated, f"flow {flow} could go faster"
        assert any(net.rate(flow) >= max(net.rate(f) for f in on_link[link]) - 1e-6 for link in saturated)


def test_a_link_out_of_range_is_refused_before_anything_changes() -> None:
    net = FlowNetwork([1.0, 2.0])
    kept = net.add([0])
    for bad in ([7], [-1], [1, 2]):
        with pytest.raises(IndexError, match="links are 0 to 1"):
            net.add_many([[1], bad])
    assert net.rates == {kept: 1.0} and not net.pending


def test_a_flow_whose_rate_stays_infinite_is_not_reported_as_moved() -> None:
    net = FlowNetwork([math.inf, 1.0])
    free = net.add([0])
    net.add([1])
    net.add([0])
    assert net.rate(free) == math.inf and free not in net.changed


def test_a_capped_flow_takes_its_cap_and_leaves_the_rest() -> None:
    net = FlowNetwork([10.0])
    a = net.add([0], cap=2.0)
    b = net.add([0])
    assert (net.rate(a), net.rate(b)) == pytest.approx((2.0, 8.0))
    assert net.changed == [b]  # the capped flow kept its rate
    assert net.carried[0] == pytest.approx(10.0)
    c = net.add([0], cap=6.0)  # wants more than the fair share of what is left: shares evenly with b
    assert (net.rate(a), net.rate(b), net.rate(c)) == pytest.approx((2.0, 4.0, 4.0))
    net.remove_many([b, c])
    assert net.rate(a) == 2.0 and net.carried[0] == pytest.approx(2.0)
    assert net.changed == []


def test_average_load_counts_what_flows_move_on_average_and_deferred_changes_wait_for_commit() -> None:
    net = FlowNetwork([10.0, 10.0])
    a, b = net.add_many([[0], [0, 1]])
    assert net.average_load() == pytest.approx([10.0, 5.0])  # without averages: the rates
    net.set_averages([a, b], [1.0, 2.5])  # a sends a fifth of the time, b half
    assert net.average_load() == pytest.approx([3.5, 2.5])
    c = net.add_many([[1]], defer=True)[0]
    net.remove_many([a], defer=True)
    assert net.pending and b in net.rates and c not in net.rates  # nothing recomputed yet
    net.commit()
    assert not net.pending and (net.rate(b), net.rate(c)) == pytest.approx((5.0, 5.0))
    assert net.changed == [c]  # b kept its rate: a's end freed link 0, c's start took half of link 1
    assert net.average_load() == pytest.approx([2.5, 7.5])  # b's average stays until its owner resets it


def reference_rates(capacity: list[float], paths: dict[int, list[int]], caps: dict[int, float]) -> dict[int, float]:
    """Max-min fair rates by plain progressive filling, one level at a time (a flow's cap is a private link)."""
    rates = {flow: caps.get(flow, math.inf) for flow, path in paths.items() if not path}
    rising = {flow for flow, path in paths.items() if path}
    room = list(capacity)
    while rising:
        count: dict[int, int] = {}
        for flow in rising:
            for link in paths[flow]:
                count[link] = count.get(link, 0) + 1
        level = min([room[link] / n for link, n in count.items()] + [caps[f] for f in rising if f in caps])
        full = {link for link, n in count.items() if room[link] / n <= level * (1 + 1e-12)}
        frozen = {f for f in rising if caps.get(f, math.inf) <= level * (1 + 1e-12) or full & set(paths[f])}
        for flow in frozen:
            rates[flow] = level
            for link in paths[flow]:
                room[link] -= level
        rising -= frozen
    return rates


def random_route(rng: random.Random, tree: Topology | None, links: int) -> list[int]:
    """A route between two random hosts of `tree`, or else 1 to 4 random links (repeats allowed)."""
    if tree is None:
        return [rng.randrange(links) for _ in range(rng.randint(1, 4))]
    a, b = rng.sample(range(len(tree.hosts)), 2)
    return tree.path(f"n-{a}", f"n-{b}", key=rng.randrange(8))


@pytest.mark.parametrize("compiled", [True, False])
def test_rates_match_a_reference_through_random_starts_and_ends(compiled: bool,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The refill (compiled, and as plain Python) gives the reference's rates, and `changed` and
    # `carried` follow, through starts and ends (single and batched, with caps, over no link, over a
    # link twice) in random order, on random links and on a fat-tree full of tied levels.
    if not compiled:
        monkeypatch.setattr(flows, "refill", flows_fill.refill.py_func)
    tree = fat_tree(hosts(32), hosts_per_leaf=4, leaves_per_pod=2, aggregations_per_pod=2, cores=2,
                    host_bandwidth=10.0, oversubscription=2.0)
    for seed in range(16):
        rng = random.Random(seed)
        on_tree = seed % 2 == 1
        if on_tree:
            capacity = [link.bandwidth for link in tree.links]
        else:
            capacity = [float(rng.choice([1, 2, 3, 5, 7.5])) for _ in range(rng.randint(2, 10))]
        net = FlowNetwork(capacity)
        paths: dict[int, list[int]] = {}
        caps: dict[int, float] = {}
        for _ in range(40):
            before = dict(net.rates)
            mixed = rng.random() < 0.25  # ends and starts deferred, then one commit
            removing = bool(paths) and (mixed or rng.random() < 0.45)
            if removing:
                ended = rng.sample(sorted(paths), rng.randint(1, min(4, len(paths))))
                if mixed:
                    net.remove_many(ended, defer=True)
                elif len(ended) == 1 and rng.random() < 0.5:
                    net.remove(ended[0])
                else:
                    net.remove_many(ended)
                for flow in ended:
                    del paths[flow]
                    caps.pop(flow, None)
            if mixed or not removing:
                new = [random_route(rng, tree if on_tree else None, len(capacity)) if rng.random() < 0.93 else []
                       for _ in range(rng.choice([1, 1, 2, 5, 12]))]
                wants = [rng.choice([math.inf, math.inf, math.inf, 0.4, 1.0, 2.5, rng.uniform(0.1, 4)]) for _ in new]
                started = net.add_many(new, wants, defer=mixed)
                for flow, path, want in zip(started, new, wants, strict=True):
                    paths[flow] = sorted(set(path))
                    if want < math.inf:
                        caps[flow] = want
                if mixed and len(started) > 1:  # one ends before the commit: it leaves no trace
                    net.remove_many([started[0]], defer=True)
                    del paths[started[0]]
                    caps.pop(started[0], None)
            if mixed:
                assert net.pending
                net.commit()
            assert not net.pending
            expected = reference_rates(capacity, paths, caps)
            assert net.rates.keys() == expected.keys()
            for flow, rate in expected.items():
                assert net.rate(flow) == pytest.approx(rate, rel=1e-9), (seed, flow)
            assert net.changed == sorted(f for f in paths if before.get(f) != net.rates[f])
            load = np.zeros(len(capacity))
            for flow, path in paths.items():
                load[path] += expected[flow]
            assert net.carried == pytest.approx(load, rel=1e-9, abs=1e-9)


def test_a_change_that_spreads_far_stays_exact_and_moves_only_its_component() -> None:
    # Random pairs on a fat-tree make one component in which a change moves most rates; a flow on
    # links of its own is another component, which changes elsewhere never re-derive or move.
    topology = fat_tree(hosts(64), hosts_per_leaf=8, leaves_per_pod=2, aggregations_per_pod=2, cores=4,
                        host_bandwidth=10 * GB, oversubscription=4.0)
    rng = random.Random(7)
    routes = []
    for i in range(700):
        a, b = rng.sample(range(64), 2)
        routes.append(topology.path(f"n-{a}", f"n-{b}", key=i))
    capacity = [link.bandwidth for link in topology.links] + [3.0]
    alone = len(capacity) - 1  # a link no route uses
    net = FlowNetwork(capacity)
    live = net.add_many(routes[:600])
    apart = net.add([alone])
    assert net.rate(apart) == 3.0
    moved = 0
    for route in routes[600:]:
        before = net.recomputed_flows
        net.remove(live.pop(rng.randrange(len(live))))
        moved += len(net.changed)
        assert apart not in net.changed and net.recomputed_flows - before == len(live)
        live.append(net.add(route))
        assert apart not in net.changed
    assert moved > 100 * 50  # each end moved many rates: the component is the whole fat-tree
    expected = reference_rates(capacity, {f: list(net.flows[f]) for f in [*live, apart]}, {})
    assert [net.rate(f) for f in live] == pytest.approx([expected[f] for f in live], rel=1e-9)
    assert net.rate(apart) == 3.0


def test_builders_record_host_groups_coarse_to_fine(tmp_path: Path) -> None:
    spine = leaf_spine(hosts(8), hosts_per_leaf=4, spines=2, host_bandwidth=GB)
    assert spine.host_groups()["n-5"] == ("leaf-1",)
    tree = fat_tree(hosts(16), hosts_per_leaf=4, leaves_per_pod=2, aggregations_per_pod=2, cores=2, host_bandwidth=GB)
    assert tree.host_groups()["n-9"] == ("pod-1", "leaf-2")
    assert rail_optimized(hosts(4), rails=2, rail_bandwidth=GB, spines=1, hosts_per_pod=2).host_groups() == {
        "n-0": ("pod-0",), "n-1": ("pod-0",), "n-2": ("pod-1",), "n-3": ("pod-1",)}
    torus = torus_3d(hosts(8), dims=(2, 2, 2), link_bandwidth=GB)
    assert torus.host_groups()["n-6"] == ("x1", "x1y1")  # (1, 1, 0): a plane, then a line
    path = tmp_path / "net.txt"
    path.write_text("n-0 a 1e10\nn-1 a 1e10\nn-1 b 1e10\nn-2 b 1e10\nn-2 a 1e10\nn-3 n-2 1e10\n")
    assert from_edge_list(hosts(4), path).host_groups() == {"n-0": ("a",), "n-1": ("a+b",), "n-2": ("a+b",),
                                                            "n-3": ()}


def test_a_storage_tier_attaches_to_the_top_tier_by_default() -> None:
    spine = leaf_spine(hosts(8), hosts_per_leaf=4, spines=2, host_bandwidth=GB)
    spine.path("n-0", "n-5")  # fill the route cache: attaching must clear it
    spine.attach("nfs", None, 10 * GB, 5e-6)
    storage = [link for link in spine.links if link.tier == "storage"]
    assert {(link.source, link.target) for link in storage} == {
        ("nfs", "spine-0"), ("spine-0", "nfs"), ("nfs", "spine-1"), ("spine-1", "nfs")}
    assert {link.bandwidth for link in storage} == {5 * GB}
    assert spine.graph.nodes["nfs"]["kind"] == "storage" and "nfs" not in spine.hosts
    assert "nfs" not in spine.host_groups()
    down = spine.path("nfs", "n-5")
    assert [spine.links[i].target for i in down][-2:] == ["leaf-1", "n-5"] and len(down) == 3
    up = spine.path("n-5", "nfs")
    assert spine.links[up[0]].source == "n-5" and spine.links[up[-1]].target == "nfs"
    assert spine.path_latency(up) == pytest.approx(1e-6 + 1e-6 + 5e-6)
    tree = fat_tree(hosts(16), hosts_per_leaf=4, leaves_per_pod=2, aggregations_per_pod=2, cores=3, host_bandwidth=GB)
    assert tree.top_tier() == ("core-0", "core-1", "core-2")
    tree.attach("lustre", None, 9 * GB, 1e-6)
    assert len(tree.path("n-15", "lustre")) == 4  # host, leaf, aggregation, core, storage


def test_storage_without_switches_attaches_to_every_host_but_is_no_shortcut() -> None:
    torus = torus_3d(hosts(27), dims=(3, 3, 3), link_bandwidth=100 * GB)
    before = torus.path("n-0", "n-13")
    torus.attach("blob", None, 27 * GB, 1e-6)
    assert torus.top_tier() == tuple(hosts(27))
    assert [link.bandwidth for link in torus.links if link.tier == "storage"] == pytest.approx([GB] * 54)
    assert len(torus.path("blob", "n-13")) == 1 and len(torus.path("n-13", "blob")) == 1
    assert torus.path("n-0", "n-13") == before  # host to host never passes through the storage node
    assert torus.host_groups().keys() == set(hosts(27))


def test_storage_on_named_switches_and_bad_names(tmp_path: Path) -> None:
    spine = leaf_spine(hosts(8), hosts_per_leaf=4, spines=2, host_bandwidth=GB)
    spine.attach("local", ["leaf-1"], 4 * GB, 1e-6)
    assert len(spine.path("n-4", "local")) == 2 and len(spine.path("local", "n-0")) == 4
    with pytest.raises(ScenarioError, match=r"^scenario.yaml: storage tier 'x' attaches to 'spine-9', which is not a "
                                            r"switch of the topology \(switches: leaf-0, leaf-1, spine-0, spine-1\)$"):
        spine.attach("x", ["spine-0", "spine-9"], GB, 0.0, source="scenario.yaml")
    with pytest.raises(ScenarioError, match="'n-0', which is not a switch"):
        spine.attach("x", ["n-0"], GB, 0.0)
    with pytest.raises(ScenarioError, match="has the name of a node"):
        spine.attach("local", None, GB, 0.0)
    assert "x" not in spine.graph
    many = fat_tree(hosts(64), hosts_per_leaf=4, leaves_per_pod=2, aggregations_per_pod=2, cores=2, host_bandwidth=GB)
    with pytest.raises(ScenarioError, match=r"fat_tree: .*\(switches: leaf-0, .*, leaf-7, \.\.\.\)$"):
        many.attach("x", ["nope"], GB, 0.0)


PARTITIONED = "n-0 s1 1e10\ns1 s2 1e10\ns2 n-1 1e10\nn-2 s3 1e10\ns3 n-3 1e10\n"


def test_partitions_are_accepted_only_when_allowed(tmp_path: Path) -> None:
    path = tmp_path / "net.txt"
    path.write_text(PARTITIONED)
    with pytest.raises(ScenarioError, match="disconnected: 2 hosts cannot reach n-0"):
        from_edge_list(hosts(4), path)
    topology = from_edge_list(hosts(4), path, allow_partitions=True)
    assert topology.partitions() == [("n-0", "n-1"), ("n-2", "n-3")]
    assert topology.host_groups() == {"n-0": ("partition-0", "s1"), "n-1": ("partition-0", "s2"),
                                      "n-2": ("partition-1", "s3"), "n-3": ("partition-1", "s3")}
    with pytest.raises(ScenarioError, match="no route from 'n-0' to 'n-2'"):
        topology.path("n-0", "n-2")
    topology.attach("nfs", None, 2 * GB, 1e-6)  # the top tier of each island
    assert {link.target for link in topology.links if link.source == "nfs"} == {"s1", "s2", "s3"}
    assert topology.path("nfs", "n-2") and topology.path("n-0", "nfs")
    with pytest.raises(ScenarioError, match="no route from 'n-0' to 'n-2'"):  # not through the storage node
        topology.path("n-0", "n-2")
    assert topology.partitions() == [("n-0", "n-1"), ("n-2", "n-3")]
    graph = nx.Graph()
    for a, b in (("n-1", "n-0"), ("n-2", "n-3")):
        graph.add_edge(a, b, bandwidth=GB)
    graphml = tmp_path / "net.graphml"
    nx.write_graphml(graph, graphml)
    islands = from_graphml(hosts(4), graphml, allow_partitions=True)
    assert islands.partitions() == [("n-0", "n-1"), ("n-2", "n-3")]
    assert islands.host_groups()["n-3"] == ("partition-1",)
    assert fat_tree(hosts(8), hosts_per_leaf=4, leaves_per_pod=1, aggregations_per_pod=1, cores=1,
                    host_bandwidth=GB).partitions() == [tuple(hosts(8))]


def test_a_switch_island_is_an_error_even_with_partitions(tmp_path: Path) -> None:
    path = tmp_path / "net.txt"
    path.write_text(PARTITIONED + "x1 x2 1e10\nx2 x3 1e10\nx3 x1 1e10\n")
    for allow in (True, False):
        with pytest.raises(ScenarioError, match=r"disconnected: 3 switches reach no cluster node \(e.g. x1, x2, x3\)"
                           if allow else "2 hosts cannot reach n-0") as info:
            from_edge_list(hosts(4), path, allow_partitions=allow)
        assert len(str(info.value).splitlines()) == 1
