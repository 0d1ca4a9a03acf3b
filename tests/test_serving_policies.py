"""Conformance suite over every registered balancer and autoscaler, plus each one's own behaviour."""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from dcsim.errors import PolicyError
from dcsim.policies import build, names
from dcsim.policies.serving_base import Autoscaler, Balancer

BALANCERS = [n for n in names("balancer") if not n.startswith("test_")]
AUTOSCALERS = [n for n in names("autoscaler") if not n.startswith("test_")]


@dataclass
class FakeRequest:
    id: int
    key: int = 0
    arrival: float = 0.0
    prompt_tokens: int = 100
    output_tokens: int = 50
    generated: int = 0
    prefilled: int = 0

    @property
    def need(self) -> int:
        return self.prompt_tokens + self.generated


@dataclass
class FakeReplica:
    id: int
    outstanding: int = 0
    outstanding_tokens: int = 0
    speed: float = 1.0
    accelerator: str = "H100"
    tensor_parallel: int = 1

    def prefix_hit(self, request: object) -> int:
        return 0  # no prefix cache (paged KV is not modelled by these fakes)


@dataclass
class FakeBalancerView:
    replicas: Sequence[FakeReplica]
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    now: float = 0.0


@dataclass(frozen=True)
class FakeAutoscalerView:
    replicas: int = 2
    ready: int = -1  # default: all replicas ready
    outstanding: int = 0
    waiting: int = 0
    busy_fraction: float = 0.0
    min_replicas: int = 0
    max_replicas: int = 100
    now: float = 0.0

    def __post_init__(self) -> None:
        if self.ready < 0:
            object.__setattr__(self, "ready", self.replicas)


def replicas(*ids: int) -> list[FakeReplica]:
    return [FakeReplica(i) for i in ids]


def route(policy: Balancer, view: FakeBalancerView, count: int, keys: Sequence[int] | None = None) -> list[int]:
    """Send `count` requests, adding each to its replica's load as the engine would."""
    by_id = {replica.id: replica for replica in view.replicas}
    chosen = []
    for i in range(count):
        request = FakeRequest(i, key=keys[i] if keys is not None else i)
        choice = policy.choose(request, view)
        by_id[choice].outstanding += 1
        by_id[choice].outstanding_tokens += request.prompt_tokens + request.output_tokens
        chosen.append(choice)
    return chosen


# --- balancer conformance --------------------------------------------------------------------------


@pytest.mark.parametrize("name", BALANCERS)
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_balancer_returns_an_offered_id(name: str, count: int) -> None:
    view = FakeBalancerView(replicas(*range(10, 10 + 3 * count, 3)))
    offered = {replica.id for replica in view.replicas}
    assert set(route(build("balancer", name), view, 50)) <= offered


@pytest.mark.parametrize("name", BALANCERS)
def test_balancer_is_deterministic(name: str) -> None:
    runs = []
    for _ in range(2):
        view = FakeBalancerView(replicas(0, 1, 2, 3), rng=np.random.default_rng(42))
        view.replicas[1].speed = 2.0
        runs.append(route(build("balancer", name), view, 200, keys=[i % 17 for i in range(200)]))
    assert runs[0] == runs[1]
    assert all(isinstance(choice, int) for choice in runs[0])


@pytest.mark.parametrize("name", BALANCERS)
def test_balancer_params_round_trip_and_keyword_only(name: str) -> None:
    policy = build("balancer", name)
    assert isinstance(policy, Balancer)
    params = policy.get_params()
    assert build("balancer", name, params).get_params() == params
    for param in inspect.signature(type(policy).__init__).parameters.values():
        assert param.name == "self" or param.kind is inspect.Parameter.KEYWORD_ONLY
    assert policy.family == "balancer" and policy.name == name
    assert (inspect.getdoc(type(policy)) or "").strip(), "the first docstring line is what `dcsim policies` shows"


@pytest.mark.parametrize("name", BALANCERS)
def test_balancer_follows_a_changing_offered_set(name: str) -> None:
    policy = build("balancer", name)
    rng = np.random.default_rng(1)
    for ids in ([0, 2, 5], [2, 5], [5], [0, 2, 5, 9], [9], [2, 9], [0, 2, 5]):
        view = FakeBalancerView(replicas(*ids), rng=rng)
        assert set(route(policy, view, 20)) <= set(ids)


# --- balancer behaviour ----------------------------------------------------------------------------


def test_round_robin_cycles_evenly() -> None:
    view = FakeBalancerView(replicas(3, 4, 8, 11))
    chosen = route(build("balancer", "round_robin"), view, 4 * 25)
    assert chosen[:5] == [3, 4, 8, 11, 3]
    assert set(Counter(chosen).values()) == {25}


def test_round_robin_rotates_by_id_when_the_set_changes() -> None:
    policy = build("balancer", "round_robin")
    assert route(policy, FakeBalancerView(replicas(0, 1, 2)), 2) == [0, 1]
    assert route(policy, FakeBalancerView(replicas(0, 2, 3)), 3) == [2, 3, 0]  # 1 left: the cycle goes on after it


def test_least_outstanding_picks_the_minimum_and_rotates_ties() -> None:
    policy = build("balancer", "least_outstanding_requests")
    view = FakeBalancerView([FakeReplica(i, outstanding=n) for i, n in enumerate([3, 1, 2])])
    assert route(policy, view, 1) == [1]
    idle = FakeBalancerView(replicas(0, 1, 2))
    assert route(build("balancer", "least_outstanding_requests"), idle, 6) == [0, 1, 2, 0, 1, 2]


def test_least_tokens_picks_the_fewest_tokens() -> None:
    view = FakeBalancerView([FakeReplica(0, outstanding=1, outstanding_tokens=9000),
                             FakeReplica(1, outstanding=5, outstanding_tokens=800),
                             FakeReplica(2, outstanding=2, outstanding_tokens=1200)])
    assert build("balancer", "least_tokens").choose(FakeRequest(0), view) == 1


def test_power_of_two_with_two_replicas_always_takes_the_less_loaded() -> None:
    policy = build("balancer", "power_of_two_choices")
    view = FakeBalancerView([FakeReplica(4, outstanding=7), FakeReplica(9, outstanding=2)])
    assert {policy.choose(FakeRequest(i), view) for i in range(100)} == {9}


def test_power_of_d_never_takes_the_worst_replica() -> None:
    policy = build("balancer", "power_of_two_choices", {"choices": 3})
    view = FakeBalancerView([FakeReplica(i, outstanding=i) for i in range(5)])
    chosen = {policy.choose(FakeRequest(i), view) for i in range(300)}
    assert 4 not in chosen and 3 not in chosen  # 3 sampled of 5: the best of them is at most id 2
    assert chosen == {0, 1, 2}


def test_session_affinity_keeps_keys_and_moves_only_a_removed_replicas_keys() -> None:
    policy = build("balancer", "session_affinity")
    keys = range(1000)
    full = FakeBalancerView(replicas(0, 1, 2, 3, 4))
    before = {key: policy.choose(FakeRequest(key, key=key), full) for key in keys}
    assert before == {key: policy.choose(FakeRequest(key, key=key), full) for key in keys}
    fewer = FakeBalancerView(replicas(0, 1, 3, 4))
    after = {key: policy.choose(FakeRequest(key, key=key), fewer) for key in keys}
    moved = {key for key in keys if after[key] != before[key]}
    assert moved == {key for key in keys if before[key] == 2}
    assert moved  # replica 2 owned some keys
    # a fresh instance (another process, say) maps keys the same way: the hash is not salted
    assert before == {key: build("balancer", "session_affinity").choose(FakeRequest(key, key=key), full)
                      for key in keys}


def test_session_affinity_spreads_keys() -> None:
    policy = build("balancer", "session_affinity")
    view = FakeBalancerView(replicas(0, 1, 2, 3))
    counts = Counter(policy.choose(FakeRequest(key, key=key), view) for key in range(4000))
    assert set(counts) == {0, 1, 2, 3}
    assert all(0.15 * 4000 <= count <= 0.35 * 4000 for count in counts.values()), counts


def test_speed_weighted_sends_requests_in_proportion_to_speed() -> None:
    view = FakeBalancerView([FakeReplica(0, speed=1.0), FakeReplica(1, speed=2.0)])
    counts = Counter(route(build("balancer", "speed_weighted"), view, 600))
    assert counts[1] / counts[0] == pytest.approx(2.0, rel=0.1)


def test_speed_weighted_prefers_an_idle_fast_replica() -> None:
    view = FakeBalancerView([FakeReplica(0, speed=1.0), FakeReplica(1, speed=1.5)])
    assert build("balancer", "speed_weighted").choose(FakeRequest(0), view) == 1


@pytest.mark.parametrize(("name", "params", "message"), [
    ("power_of_two_choices", {"choices": 1}, "choices must be >= 2, got 1"),
    ("session_affinity", {"virtual_nodes": 0}, "virtual_nodes must be >= 1, got 0"),
])
def test_bad_balancer_params_raise_policy_error(name: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        build("balancer", name, params)


# --- autoscalers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", AUTOSCALERS)
def test_autoscaler_conformance(name: str) -> None:
    policy = build("autoscaler", name)
    assert isinstance(policy, Autoscaler)
    params = policy.get_params()
    assert build("autoscaler", name, params).get_params() == params
    assert policy.family == "autoscaler" and policy.name == name
    assert policy.interval is None or policy.interval > 0
    for view in (FakeAutoscalerView(), FakeAutoscalerView(replicas=3, outstanding=40, waiting=9, busy_fraction=0.9),
                 FakeAutoscalerView(replicas=0, outstanding=5, waiting=5)):
        desired = policy.desired(view)
        assert isinstance(desired, int) and desired >= 0


def test_fixed_keeps_the_current_count() -> None:
    policy = build("autoscaler", "fixed")
    assert policy.interval is None and policy.get_params() == {}
    assert policy.desired(FakeAutoscalerView(replicas=5, outstanding=900, busy_fraction=1.0)) == 5


@pytest.mark.parametrize(("outstanding", "expected"), [(0, 0), (1, 1), (16, 1), (17, 2), (48, 3), (49, 4)])
def test_queue_target(outstanding: int, expected: int) -> None:
    policy = build("autoscaler", "queue_target")
    assert policy.desired(FakeAutoscalerView(outstanding=outstanding)) == expected
    tenths = build("autoscaler", "queue_target", {"target_outstanding": 0.1})
    assert tenths.desired(FakeAutoscalerView(outstanding=3)) == 30  # not 31 from 3 / 0.1 = 30.000000000000004


@pytest.mark.parametrize(("replicas", "busy", "outstanding", "expected"), [
    (4, 0.7, 10, 4),    # at target: stay (no float creep to 5)
    (4, 1.0, 10, 6),    # 4 / 0.7 = 5.7
    (4, 0.35, 10, 2),
    (4, 0.0, 10, 1),    # requests still unfinished: keep one
    (4, 0.0, 0, 0),     # idle: may go to zero (the engine clamps to min_replicas)
    (0, 0.0, 3, 1),     # scale from zero
])
def test_utilization_target(replicas: int, busy: float, outstanding: int, expected: int) -> None:
    view = FakeAutoscalerView(replicas=replicas, ready=replicas, busy_fraction=busy, outstanding=outstanding)
    assert build("autoscaler", "utilization_target").desired(view) == expected


def test_utilization_target_keeps_loading_replicas_out_of_the_busy_measure() -> None:
    # 2 ready replicas fully busy want ceil(2 / 0.5) = 4; the 2 still loading are kept on top: 6.
    view = FakeAutoscalerView(replicas=4, ready=2, busy_fraction=1.0, outstanding=50)
    assert build("autoscaler", "utilization_target", {"target": 0.5}).desired(view) == 6


@pytest.mark.parametrize(("name", "params", "message"), [
    ("queue_target", {"target_outstanding": -1.0}, "target_outstanding must be > 0, got -1"),
    ("queue_target", {"interval": 0.0}, "interval must be a number of seconds from 0.001 to .*, got 0"),
    ("queue_target", {"interval": 1.0e-300}, r"\(shorter intervals stall the simulation clock\), got 1e-300"),
    ("queue_target", {"interval": 1.0e308}, "interval must be a number of seconds from 0.001 to 3153600000"),
    ("queue_target", {"scale_down_window": 1.0e308}, "scale_down_window must be a number of seconds from 0"),
    ("utilization_target", {"target": 1.5}, r"target must be in \(0, 1\], got 1.5"),
    ("utilization_target", {"target": 0.0}, r"target must be in \(0, 1\], got 0"),
    ("utilization_target", {"interval": -5.0}, "interval must be a number of seconds from 0.001 .*, got -5"),
    ("utilization_target", {"interval": "30s"}, "parameter 'interval' expects float"),
])
def test_bad_autoscaler_params_raise_policy_error(name: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        build("autoscaler", name, params)


def test_integer_values_are_accepted_for_float_params() -> None:
    # YAML users write `interval: 30`; strict validation still takes an int for a float.
    policy = build("autoscaler", "queue_target", {"interval": 30, "target_outstanding": 8})
    assert policy.desired(replace(FakeAutoscalerView(), outstanding=9)) == 2
    assert build("autoscaler", "queue_target", policy.get_params()).get_params() == policy.get_params()


@pytest.mark.parametrize("name", ["queue_target", "utilization_target"])
def test_scale_down_waits_for_the_stabilisation_window(name: str) -> None:
    policy = build("autoscaler", name, {"scale_down_window": 100.0})
    high = FakeAutoscalerView(replicas=4, outstanding=64, busy_fraction=1.0, now=0.0)
    assert policy.desired(high) >= 4
    peak = policy.desired(high)
    low = {"replicas": 4, "outstanding": 1, "busy_fraction": 0.05}
    assert policy.desired(FakeAutoscalerView(**low, now=50.0)) == peak  # still inside the window
    assert policy.desired(FakeAutoscalerView(**low, now=150.0)) == 1  # the high recommendation has expired
    immediate = build("autoscaler", name, {"scale_down_window": 0.0})
    immediate.desired(high)
    assert immediate.desired(FakeAutoscalerView(**low, now=1.0)) == 1
