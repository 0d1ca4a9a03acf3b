"""Topology-aware placement: best fit at node, leaf and pod level; partitions are never spanned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcsim.catalog import load_catalog
from dcsim.model import Cluster, Node
from dcsim.model.topology import Topology, fat_tree, from_edge_list
from dcsim.policies import build
from dcsim.policies.base import Allocation, PlacementRequest
from dcsim.policies.placement.topology_aware import TopologyAware

GB = 1e9


def nodes(count: int, size: int = 8) -> list[Node]:
    return [Node(id=i, name=f"n-{i}", pool="gpu", accelerator="H100", size=size, host_idle_w=0.0, host_busy_w=0.0)
            for i in range(count)]


def cluster_on(topology: Topology | None, count: int = 16, size: int = 8) -> Cluster:
    members = nodes(count, size)
    specs = {"H100": load_catalog().accelerators["H100-SXM"]}
    if topology is None:
        return Cluster(members, specs)
    groups = topology.host_groups()
    return Cluster(members, specs, [groups[node.name] for node in members])


def pods() -> Cluster:
    """2 pods x 2 leaves x 4 hosts of 8 accelerators: leaf-0 = n-0..3, leaf-1 = n-4..7 (pod-0), ..."""
    topology = fat_tree([f"n-{i}" for i in range(16)], hosts_per_leaf=4, leaves_per_pod=2, aggregations_per_pod=2,
                        cores=2, host_bandwidth=50 * GB)
    return cluster_on(topology)


def place(cluster: Cluster, demand: int) -> Allocation:
    allocation = TopologyAware().place(PlacementRequest(0, demand, "H100"), cluster)
    assert sum(count for _, count in allocation) in (0, demand)
    for node, count in allocation:
        assert 1 <= count <= cluster.free_on[node]
    assert len({node for node, _ in allocation}) == len(allocation)
    return allocation


def occupy(cluster: Cluster, **taken: int) -> None:
    for name, count in taken.items():
        cluster.allocate(int(name.removeprefix("n")), count)


def leaf(cluster: Cluster, node: int) -> str:
    return cluster.groups[node][-1]


def test_registered_with_no_parameters() -> None:
    policy = build("placement", "topology_aware")
    assert isinstance(policy, TopologyAware) and policy.get_params() == {}


def test_fat_tree_groups_reach_the_cluster() -> None:
    cluster = pods()
    assert cluster.groups[0] == ("pod-0", "leaf-0")
    assert cluster.groups[5] == ("pod-0", "leaf-1")
    assert cluster.groups[15] == ("pod-1", "leaf-3")


def test_a_two_node_job_lands_on_one_leaf() -> None:
    assert place(pods(), 16) == ((0, 8), (1, 8))


def test_a_job_too_big_for_a_leaf_stays_in_one_pod() -> None:
    cluster = pods()
    occupy(cluster, n0=8)  # pod-0 now has 56 free, pod-1 64: best fit is pod-0
    allocation = place(cluster, 40)
    assert {cluster.groups[node][0] for node, _ in allocation} == {"pod-0"}
    assert len(allocation) == 5
    occupy(cluster, n1=8, n2=8)  # pod-0: 40 free, still fits exactly
    assert {cluster.groups[node][0] for node, _ in place(cluster, 40)} == {"pod-0"}
    occupy(cluster, n3=1)  # pod-0: 39 free, too few: pod-1
    assert {cluster.groups[node][0] for node, _ in place(cluster, 40)} == {"pod-1"}


def test_best_fit_picks_the_fuller_leaf() -> None:
    cluster = pods()
    occupy(cluster, n4=8, n5=3)  # leaf-1 has 21 free, leaf-0 and the others 32
    allocation = place(cluster, 16)
    assert {leaf(cluster, node) for node, _ in allocation} == {"leaf-1"}
    assert allocation == ((6, 8), (7, 8))  # most free first: two whole nodes, not three
    occupy(cluster, n6=8)  # leaf-1 has 13 free now: too few, the next fullest leaf is leaf-0 (lowest id of equals)
    assert {leaf(cluster, node) for node, _ in place(cluster, 16)} == {"leaf-0"}


def test_the_last_piece_takes_the_tightest_node() -> None:
    cluster = pods()
    occupy(cluster, n0=2, n1=5, n2=4)  # leaf-0 free: 6, 3, 4, 8 = 21
    # 20 from leaf-0 (the fullest leaf that holds it): 8 + 6 + 4, then the last 2 on the node with 3 free
    assert place(cluster, 20) == ((3, 8), (0, 6), (2, 4), (1, 2))
    assert place(cluster, 11) == ((3, 8), (1, 3))  # after the 8, the node with 3 free covers the rest exactly


def test_a_small_job_goes_to_the_fullest_node_that_fits() -> None:
    cluster = pods()
    occupy(cluster, n3=5, n9=7, n12=6)  # free: n3 3, n9 1, n12 2
    assert place(cluster, 1) == ((9, 1),)
    assert place(cluster, 2) == ((12, 2),)
    assert place(cluster, 3) == ((3, 3),)
    assert place(cluster, 4) == ((0, 4),)
    assert place(cluster, 8) == ((0, 8),)


def test_a_fragmented_small_job_stays_under_one_leaf() -> None:
    cluster = pods()
    for node in range(16):
        cluster.allocate(node, 5)  # 3 free everywhere
    cluster.release(14, 2)  # leaf-3 has 14 free, the others 12
    allocation = place(cluster, 6)
    assert len(allocation) == 2 and len({leaf(cluster, node) for node, _ in allocation}) == 1
    assert leaf(cluster, allocation[0][0]) == "leaf-0"  # the fullest leaf that holds it (lowest id of equals)


def test_a_job_bigger_than_any_pod_spans_the_fewest_pods() -> None:
    cluster = pods()
    occupy(cluster, n0=8, n8=4)  # pod-0: 56 free, pod-1: 60
    allocation = place(cluster, 100)
    pod1 = [node for node, _ in allocation if node >= 8]
    assert sum(count for node, count in allocation if node >= 8) == 60 and len(pod1) == 8  # all of pod-1 first
    assert len(allocation) == 8 + 5  # 40 more from pod-0: five whole nodes


def test_without_groups_it_packs_onto_the_fewest_nodes() -> None:
    cluster = cluster_on(None, count=6)
    assert cluster.groups == ((),) * 6
    occupy(cluster, n0=3, n1=6, n2=1)  # free: 5, 2, 7, 8, 8, 8
    assert place(cluster, 20) == ((3, 8), (4, 8), (0, 4))  # whole nodes, then the tightest node for 4
    assert place(cluster, 2) == ((1, 2),)


def partitioned(tmp_path: Path) -> Cluster:
    """Two islands: n-0, n-1 under switch a and n-2, n-3 under switch b; plus n-4, n-5 under c in the first."""
    path = tmp_path / "islands.txt"
    path.write_text("n-0 a 1e10\nn-1 a 1e10\nn-2 b 1e10\nn-3 b 1e10\nn-4 c 1e10\nn-5 c 1e10\na c 1e10\n")
    topology = from_edge_list([f"n-{i}" for i in range(6)], path, allow_partitions=True)
    return cluster_on(topology, count=6)


def test_partition_labels_come_first(tmp_path: Path) -> None:
    cluster = partitioned(tmp_path)
    assert cluster.groups == (("partition-0", "a"), ("partition-0", "a"), ("partition-1", "b"),
                              ("partition-1", "b"), ("partition-0", "c"), ("partition-0", "c"))


def test_a_job_never_spans_partitions(tmp_path: Path) -> None:
    cluster = partitioned(tmp_path)
    occupy(cluster, n0=8, n1=8, n4=8, n2=4)  # partition-0: 8 free (n-5), partition-1: 12
    assert place(cluster, 12) == ((3, 8), (2, 4))
    occupy(cluster, n3=4)  # partition-0: 8, partition-1: 8; 16 are free but no partition holds 10
    assert place(cluster, 10) == ()
    occupy(cluster, n5=8)
    assert place(cluster, 8) == ((2, 4), (3, 4))


def test_random_placements_are_valid_and_stay_in_one_partition(tmp_path: Path) -> None:
    cluster = partitioned(tmp_path)
    rng = np.random.default_rng(7)
    running: list[Allocation] = []
    policy = TopologyAware()
    for _ in range(400):
        if running and (rng.random() < 0.45 or sum(cluster.free_on) == 0):
            for node, count in running.pop(int(rng.integers(len(running)))):
                cluster.release(node, count)
            continue
        demand = int(rng.integers(1, min(sum(cluster.free_on), 24) + 1))
        allocation = policy.place(PlacementRequest(0, demand, "H100"), cluster)
        if not allocation:
            continue
        assert sum(count for _, count in allocation) == demand
        assert all(1 <= count <= cluster.free_on[node] for node, count in allocation)
        assert len({cluster.groups[node][0] for node, _ in allocation}) == 1
        for node, count in allocation:
            cluster.allocate(node, count)
        running.append(allocation)


@pytest.mark.parametrize("demand", [1, 5, 8, 13, 16, 40, 64, 100, 128])
def test_every_demand_up_to_the_cluster_is_placed(demand: int) -> None:
    assert sum(count for _, count in place(pods(), demand)) == demand
