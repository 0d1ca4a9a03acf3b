"""The training engine's fast paths give what the general paths give (issue 13, engine speed)."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import simpy
from hypothesis import given
from hypothesis import strategies as st

from dcsim.engine import timers
from dcsim.engine.allocation import check_allocation
from dcsim.engine.timers import StaleCalls, call_after
from dcsim.errors import PolicyError
from dcsim.model import Cluster, Job, Node
from dcsim.policies.base import PlacementRequest
from dcsim.policies.placement.pack import Pack


def _append(order: list[int], i: int, _event: object) -> None:
    order.append(i)


def _fire_order(plain_calls: bool) -> list[int]:
    env = simpy.Environment()
    order: list[int] = []
    # Equal and different times, interleaved: ties go by creation order, whichever kind of event.
    for i, delay in enumerate([5.0, 0.0, 5.0, 2.0, 0.0, 5.0, 2.0]):
        callback = partial(_append, order, i)
        if plain_calls and i % 2:
            call_after(env, delay, callback)
        else:
            env.timeout(delay).callbacks.append(callback)
    env.run()
    assert env.now == 5.0
    return order


def test_timed_calls_run_in_the_order_timeouts_created_at_the_same_moments_would() -> None:
    assert _fire_order(plain_calls=True) == _fire_order(plain_calls=False) == [1, 4, 3, 6, 0, 2, 5]
    with pytest.raises(ValueError):
        call_after(simpy.Environment(), -1.0, lambda _e: None)


def test_cancelled_calls_do_not_run_and_rebuilding_the_heap_keeps_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers, "COMPACT_AFTER", 3)
    env = simpy.Environment()
    stale = StaleCalls(env)
    stale.limit = 50.0
    order: list[int] = []
    calls = [call_after(env, float(i % 7 * 10), partial(_append, order, i)) for i in range(20)]
    env.timeout(25.0).callbacks.append(partial(_append, order, 100))
    cancelled = {1, 2, 5, 6, 8, 9, 12, 13, 15, 16, 18}  # more than half the heap: rebuilt without them
    for i in sorted(cancelled):
        stale.cancel(calls[i])
    stale.cancel(calls[1])  # twice: no effect
    assert len(env._queue) == 10  # type: ignore[attr-defined]
    assert stale.dropped_until == 50.0  # the latest dropped call within the limit (call 5 at 50 s; 6 is past it)
    env.run()
    kept = sorted((i % 7 * 10, i) for i in range(20) if i not in cancelled)
    assert order == [i for t, i in kept if t < 25] + [100] + [i for t, i in kept if t > 25]
    stale.cancel(calls[0])  # a call that ran already: no effect
    assert stale.count == 0


def _cluster() -> Cluster:
    nodes = [Node(id=i, name=f"n{i}", pool="p", accelerator="V100" if i < 3 else "K80", size=4,
                  host_idle_w=0, host_busy_w=0) for i in range(4)]
    return Cluster(nodes, {})


def _job(demand: int) -> Job:
    return Job(id=7, name="j", submit=0.0, demand=demand, model="generic", work=1.0, estimate=1.0)


@pytest.mark.parametrize(("allocation", "demand", "fragment"), [
    (((0, 2), (0, 2)), 4, "listed twice"),  # right total, same node twice: only the duplicate check stops it
    (((0, 4), (3, 4)), 8, "has K80, not V100"),
    (((0, 5), (1, 3)), 8, "takes 5 on node n0"),
    (((0, 3),), 8, "allocates 3 accelerators, not 8"),
    (((9, 4), (1, 4)), 8, "node 9 does not exist"),
    (((0, 0), (1, 4), (2, 4)), 8, "takes 0 on node n0"),
    ([[0, "x"]], 8, "expected (node id, count) pairs"),
])
def test_bad_placement_answers_still_raise_with_the_general_message(allocation: Any, demand: int,
                                                                     fragment: str) -> None:
    cluster = _cluster()
    with pytest.raises(PolicyError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        check_allocation(cluster, Pack(), _job(demand), "V100", allocation)


def test_good_placement_answers_pass_both_checks() -> None:
    cluster = _cluster()
    check_allocation(cluster, Pack(), _job(8), "V100", ((0, 4), (2, 4)))  # the fast path
    check_allocation(cluster, Pack(), _job(8), "V100", [(0, 4), (2, 4)])  # a list: the general path
    check_allocation(cluster, Pack(), _job(2), "V100", ((1, True), (2, 1)))  # bools count as ints there


def test_pack_takes_the_tightest_single_node_else_splits_fullest_first() -> None:
    cluster = _cluster()
    cluster.allocate_all([(0, 1), (1, 3), (2, 2)])  # free: n0 3, n1 1, n2 2
    pack = Pack()
    assert pack.place(PlacementRequest(1, 2, "V100"), cluster) == ((2, 2),)
    assert pack.place(PlacementRequest(1, 1, "V100"), cluster) == ((1, 1),)
    assert pack.place(PlacementRequest(1, 3, "V100"), cluster) == ((0, 3),)
    # Nothing holds 5: the fullest-free node first (n0: 3), then the tightest that fits the rest (n2: 2).
    assert pack.place(PlacementRequest(1, 5, "V100"), cluster) == ((0, 3), (2, 2))
    assert pack.place(PlacementRequest(1, 4, "K80"), cluster) == ((3, 4),)


def _pack_by_scanning(demand: int, cluster: Cluster, accelerator: str) -> tuple[tuple[int, int], ...]:
    """Pack's rule spelled out node by node: whole free nodes, then best fit, else the fullest-free node."""
    size = cluster.max_node_size[accelerator]
    order = [node for free in range(size + 1) for node in cluster.nodes_with_free(accelerator, free)]
    taken: dict[int, int] = {}
    remaining = demand
    if remaining <= size:
        fits = [n for n in order if cluster.free_on[n] >= remaining]
        if fits:
            return ((fits[0], remaining),)
    while remaining > 0:
        left = [n for n in order if n not in taken and cluster.free_on[n] > 0]
        chunk = min(remaining, size)
        fits = [n for n in left if cluster.free_on[n] >= chunk]
        if fits:
            node = fits[0]
        elif left:
            node = max(left, key=lambda n: (cluster.free_on[n], -order.index(n)))
        else:
            break
        taken[node] = min(remaining, cluster.free_on[node])
        remaining -= taken[node]
    return tuple(taken.items())


@given(st.lists(st.integers(0, 8), min_size=1, max_size=40), st.integers(1, 200))
def test_pack_places_as_its_rule_node_by_node(used: list[int], demand: int) -> None:
    nodes = [Node(id=i, name=f"n{i}", pool="p", accelerator="V100", size=8, host_idle_w=0, host_busy_w=0)
             for i in range(len(used))]
    cluster = Cluster(nodes, {})
    cluster.allocate_all([(i, count) for i, count in enumerate(used) if count])
    assert Pack().place(PlacementRequest(0, demand, "V100"), cluster) == _pack_by_scanning(demand, cluster, "V100")
