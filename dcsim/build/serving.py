"""Build the inference side of a Model: replica shapes from the calibration, requests, policies.

Per replica group: the KV cache is what accelerator memory (x memory_utilization, x tensor
parallelism) leaves after the 16-bit weights, unless the scenario gives it; iteration times come
from the calibrated prefill/decode model; busy power from the calibrated serving power curve where
the accelerator has one, else the training busy draw; cold start = weight bytes / load bandwidth,
or a transfer from the service's storage tier (`weights_from`) sharing the network with other flows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import simpy

from dcsim.build.cluster import build_cluster, busy_power, power_caps
from dcsim.build.disaggregation import build_pools, pool_policy_problems
from dcsim.build.feasibility import limit_context
from dcsim.build.policies import build_policy
from dcsim.calibration import Calibration
from dcsim.calibration.inference import kv_bytes_per_token, weight_bytes
from dcsim.calibration.precision import Precision
from dcsim.catalog import ModelSpec, load_catalog
from dcsim.engine.disaggregation import DecodePoolRuntime, Disaggregation
from dcsim.engine.kv_blocks import PagedSpec
from dcsim.engine.kv_store import SharedKVStore
from dcsim.engine.levels import LevelBoard
from dcsim.engine.replica import ReplicaShape
from dcsim.engine.rng import stream
from dcsim.engine.service import ServiceRuntime
from dcsim.engine.serving import ServingEngine
from dcsim.errors import CalibrationError, CatalogError, ScenarioError
from dcsim.metrics.protocol import Recorder
from dcsim.model import Cluster, Request
from dcsim.scenario.accelerators import scenario_calibration, scenario_catalog
from dcsim.scenario.inference import ReplicaGroup, Service
from dcsim.scenario.kv_cache import PagedKV
from dcsim.scenario.schema import Scenario
from dcsim.workload import WorkloadReport, build_requests

SPEED_BATCH = 32
SPEED_CONTEXT = 1024


@dataclass
class Serving:
    engine: ServingEngine
    requests: list[Request]
    reports: dict[str, WorkloadReport]
    policies: dict[str, dict[str, object]]
    decoders: list[DecodePoolRuntime] = field(default_factory=list)  # decode pools of disaggregated services


def replica_shapes(scenario: Scenario, index: int, cluster: Cluster, calibration: Calibration,
                   busy_w: dict[str, float], pool: str = "", store: SharedKVStore | None = None) -> list[ReplicaShape]:
    """One shape per replica group of service `index` (of its `pool` when disaggregated); impossible
    shapes fail with the field's path. `store`: the service's shared KV store (shared_store), if any."""
    assert scenario.workload.inference is not None
    service = scenario.workload.inference.services[index]
    where = f"{scenario.source}: workload.inference.services.{index}"
    groups = pool_groups(service, pool)
    catalog = scenario_catalog(scenario)
    model = service_model(service, where)
    precision = Precision(service.weight_precision, service.kv_precision)
    weights = weight_bytes(model) * precision.weight_scale
    per_token = service_kv_bytes_per_token(service, model)
    shapes = []
    for group_index, group in enumerate(groups):
        path = f"{where}.{pool + '.' if pool else ''}replicas.{group_index}"
        accelerator = catalog.canonical_accelerator(group.accelerator)
        if accelerator not in cluster.accelerator_models:
            raise ScenarioError([f"{path}.accelerator: {group.accelerator!r} is not in the cluster "
                                 f"(node pools have {', '.join(cluster.accelerator_models)})"])
        tp = group.tensor_parallel
        if tp > cluster.max_node_size[accelerator]:
            raise ScenarioError([f"{path}.tensor_parallel: a replica must fit on one node; {accelerator} nodes have "
                                 f"at most {cluster.max_node_size[accelerator]} accelerators, got {tp}"])
        spec = cluster.specs[accelerator]
        memory = spec.memory_bytes.value * tp * service.memory_utilization
        kv_bytes = service.kv_cache if service.kv_cache is not None else memory - weights
        if service.kv_cache is not None and weights + kv_bytes > spec.memory_bytes.value * tp:
            raise ScenarioError([f"{where}.kv_cache: {kv_bytes / 1e9:.1f} GB plus {model.name} weights "
                                 f"({weights / 1e9:.0f} GB) exceed the memory of {tp} x {accelerator} "
                                 f"({spec.memory_bytes.value * tp / 1e9:.0f} GB)"])
        tokens = int(kv_bytes // per_token)
        if tokens < 1:
            raise ScenarioError([f"{path}: {model.name} weights ({weights / 1e9:.0f} GB) leave no room for a KV "
                                 f"cache in {tp} x {accelerator} ({memory / 1e9:.0f} GB usable); "
                                 "raise tensor_parallel or set kv_cache"])
        try:
            precision.gemm_peak(spec)
        except CalibrationError as exc:
            raise ScenarioError([f"{where}.weight_precision: {exc}"]) from None
        timing = calibration.inference.iteration_constants(model, accelerator, tp, precision)
        idle = calibration.power.idle_power(accelerator) * tp
        decode = timing.decode_fixed + timing.decode_request * SPEED_BATCH \
            + timing.decode_context * SPEED_BATCH * SPEED_CONTEXT
        shapes.append(ReplicaShape(
            group=group_index, accelerator=accelerator, tensor_parallel=tp, kv_capacity=tokens,
            max_batch=service.max_batch, timing=timing, cold_start=weights / service.weights_load_bandwidth,
            idle_w=idle, busy_w=_busy_power(calibration, accelerator, tp, busy_w[accelerator], idle),
            speed=SPEED_BATCH / decode, weight_bytes=weights, weights_from=service.weights_from, pool=pool,
            paged=paged_spec(service.paged_kv, per_token, pool, store)))
    return shapes


def pool_groups(service: Service, pool: str) -> list[ReplicaGroup]:
    """The replica groups of a service ("") or of one of its disaggregated pools."""
    if pool == "prefill" and service.prefill is not None:
        return service.prefill.replicas
    if pool == "decode" and service.decode is not None:
        return service.decode.replicas
    if pool == "mixed" and service.mixed is not None:
        return service.mixed.replicas
    return service.replicas


def service_pools(service: Service) -> tuple[str, ...]:
    if service.prefill is None:
        return ("",)
    return ("prefill", "decode", "mixed") if service.mixed is not None else ("prefill", "decode")


def shared_store(service: Service, where: str) -> SharedKVStore | None:
    """The service's shared KV store (paged_kv.shared_store), sized in the service's KV blocks; None without one."""
    paged = service.paged_kv
    if paged is None or paged.shared_store is None:
        return None
    path = f"{where}.paged_kv.shared_store"
    if not paged.prefix_caching:
        raise ScenarioError([f"{path}: a shared store holds prefix-cache blocks; it needs prefix_caching: true"])
    capacity = paged.shared_store.capacity
    blocks = int(capacity // _kv_block_bytes(service, where, f"{path}.capacity", capacity))
    return SharedKVStore(blocks, paged.shared_store.bandwidth)


def check_swap_space(service: Service, where: str) -> None:
    """paged_kv.swap_space must hold at least one KV block (else every swap would be refused)."""
    paged = service.paged_kv
    if paged is not None and paged.swap_space is not None:
        _kv_block_bytes(service, where, f"{where}.paged_kv.swap_space", paged.swap_space)


def _kv_block_bytes(service: Service, where: str, field: str, room: float) -> float:
    """Bytes of one of the service's KV blocks; a ScenarioError naming `field` if `room` bytes hold none."""
    assert service.paged_kv is not None
    block_size = service.paged_kv.block_size
    block_bytes = service_kv_bytes_per_token(service, service_model(service, where)) * block_size
    if room < block_bytes:
        raise ScenarioError([f"{field}: {room:.0f} bytes hold no KV block ({block_bytes:.0f} bytes of {block_size} "
                             "tokens); expected at least that"])
    return block_bytes


def paged_spec(paged: PagedKV | None, kv_bytes_per_token: float, pool: str = "",
               store: SharedKVStore | None = None) -> PagedSpec | None:
    """The engine's paged-KV settings of a service (None: token-granular KV, as without paged_kv).

    A decode pool's replicas count blocks but keep no prefix cache: their requests arrive prefilled
    (Mooncake reuses prefixes on its prefill nodes); one preempted there is recomputed in full or
    swapped, as `preemption` says."""
    if paged is None:
        return None
    caching = paged.prefix_caching and pool != "decode"
    return PagedSpec(block_size=paged.block_size, watermark=paged.watermark, swap=paged.preemption == "swap",
                     host_link=paged.host_link, prefix_caching=caching,
                     host_cache_bytes=(paged.host_cache or 0.0) if caching else 0.0,
                     swap_space_bytes=paged.swap_space if paged.swap_space is not None else math.inf,
                     kv_bytes_per_token=kv_bytes_per_token, store=store if caching else None)


def service_kv_bytes_per_token(service: Service, model: ModelSpec) -> float:
    """KV-cache bytes per token of the service's model at its KV precision."""
    return kv_bytes_per_token(model) * Precision(service.weight_precision, service.kv_precision).kv_scale


def service_model(service: Service, where: str) -> ModelSpec:
    try:
        model = load_catalog().model(service.model)
        kv_bytes_per_token(model)
    except (CatalogError, CalibrationError) as exc:
        raise ScenarioError([f"{where}.model: {exc}"]) from None
    return model


def _busy_power(calibration: Calibration, accelerator: str, tp: int, training_w: float,
                idle: float) -> Callable[[int], float]:
    """Whole-replica watts by batch size: the serving curve where calibrated, else the training draw."""
    @cache
    def watts(batch: int) -> float:
        per_gpu = calibration.power.serving_power(accelerator, batch, tp)
        return max(idle, (per_gpu if per_gpu is not None else training_w) * tp)

    return watts


def build_serving(scenario: Scenario, seed: int, env: simpy.Environment, cluster: Cluster,
                  calibration: Calibration, recorder: Recorder, levels: LevelBoard, busy_w: dict[str, float],
                  on_capacity_change: Callable[[], None], training_waiting: Callable[[], bool]) -> Serving | None:
    inference = scenario.workload.inference
    if inference is None:
        return None
    families = ("replica_scheduler", "balancer", "autoscaler")
    for family in families:
        build_policy(scenario, family)  # fail on bad names or parameters before reading any trace
    requests: list[Request] = []
    reports: dict[str, WorkloadReport] = {}
    services: list[ServiceRuntime] = []
    decoders: dict[int, DecodePoolRuntime] = {}
    for index, service in enumerate(inference.services):
        store = shared_store(service, f"{scenario.source}: workload.inference.services.{index}")
        check_swap_space(service, f"{scenario.source}: workload.inference.services.{index}")
        pools = {pool: replica_shapes(scenario, index, cluster, calibration, busy_w, pool, store)
                 for pool in service_pools(service)}

        def streams(name: str, prefix: str = f"inference.{service.name}") -> Any:
            return stream(seed, f"{prefix}.{name}")

        own, report = build_requests(service.requests, index, scenario.base_dir, streams)
        own = limit_context(own, report, service_model(service, ""), service.context_overflow == "truncate")
        requests.extend(own)
        reports[service.name] = report
        if service.prefill is not None:  # disaggregated: prefill pool here, decode pool after every service
            feeder, decoders[index] = build_pools(scenario, index, service, pools, env, streams, len(own))
            services.append(feeder)
            continue
        services.append(ServiceRuntime(
            env, index, service.name, pools[""], [g.count for g in service.replicas],
            [g.limit for g in service.replicas],
            service.min_replicas, build_policy(scenario, "replica_scheduler"), build_policy(scenario, "balancer"),
            build_policy(scenario, "autoscaler"), streams("balancer"), len(own),
            source=f"{scenario.source}: workload.inference.services.{index}"))
    for decoder in decoders.values():
        decoder.index = len(services)
        services.append(decoder)
    requests.sort(key=lambda r: (r.arrival, r.service))
    for new_id, request in enumerate(requests):
        request.id = new_id
    engine = ServingEngine(env, cluster, services, requests, recorder, levels, fast_forward=inference.fast_forward,
                           on_capacity_change=on_capacity_change, training_waiting=training_waiting)
    if decoders:
        engine.hand_off = Disaggregation(decoders)
    first = services[0]
    chosen: dict[str, Any] = {"replica_scheduler": first.scheduler, "balancer": first.balancer,
                              "autoscaler": first.autoscaler}
    policies = {family: {"name": p.name, "params": p.get_params()} for family, p in chosen.items()}
    return Serving(engine, requests, reports, policies, list(decoders.values()))


def service_problems(scenario: Scenario) -> list[str]:
    """Replica shapes that cannot work (weights do not fit, tensor parallelism beyond a node, more
    initial replicas than the nodes hold), for `dcsim validate`, without simulating."""
    inference = scenario.workload.inference
    if inference is None:
        return []
    problems: list[str] = []
    cluster = build_cluster(scenario)
    calibration = scenario_calibration(scenario)
    busy_w = busy_power(scenario, cluster, calibration, power_caps(scenario))
    free = {node.id: node.size for node in cluster.nodes}
    for index, service in enumerate(inference.services):
        try:
            shared_store(service, f"{scenario.source}: workload.inference.services.{index}")
            check_swap_space(service, f"{scenario.source}: workload.inference.services.{index}")
            placed = [(shape, group) for pool in service_pools(service) for shape, group in
                      zip(replica_shapes(scenario, index, cluster, calibration, busy_w, pool),
                          pool_groups(service, pool), strict=True)]
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        problems.extend(pool_policy_problems(scenario, index, service))
        for shape, group in placed:
            for _ in range(group.count):  # best fit, as the engine places them at time 0
                fits = [n for n in cluster.nodes if n.accelerator == shape.accelerator
                        and free[n.id] >= shape.tensor_parallel]
                if not fits:
                    pool = shape.pool + "." if shape.pool else ""
                    problems.append(f"{scenario.source}: workload.inference.services.{index}.{pool}replicas."
                                    f"{shape.group}: cannot place {group.count} initial replicas of "
                                    f"{shape.tensor_parallel} x {shape.accelerator} on the cluster's nodes")
                    break
                node = min(fits, key=lambda n: (free[n.id], n.id))
                free[node.id] -= shape.tensor_parallel
    return problems
