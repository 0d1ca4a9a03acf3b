"""Build the two pools of a disaggregated service (engine/disaggregation.py) and wire their KV transfers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pandas as pd
import simpy

from dcsim.build.policies import build_policy
from dcsim.calibration.inference import kv_bytes_per_token
from dcsim.calibration.precision import Precision
from dcsim.catalog import ModelSpec, load_catalog
from dcsim.engine.disaggregation import DecodePoolRuntime
from dcsim.engine.kv_transfer import KVTransfers
from dcsim.engine.replica import ReplicaShape
from dcsim.engine.service import ServiceRuntime
from dcsim.errors import PolicyError
from dcsim.metrics.disaggregation_summary import kv_transfers_frame, pools_frame
from dcsim.model import Request
from dcsim.policies import registry
from dcsim.scenario.inference import Service
from dcsim.scenario.policy_spec import PolicySpec
from dcsim.scenario.schema import Scenario
from dcsim.scenario.serving_pools import PoolPolicy


def build_pools(scenario: Scenario, index: int, service: Service, shapes: dict[str, list[ReplicaShape]],
                env: simpy.Environment, streams: Callable[[str], Any], arrivals: int,
                ) -> tuple[ServiceRuntime, DecodePoolRuntime]:
    """The prefill pool (takes the service's arrivals) and the decode pool (index set by the caller)."""
    assert service.prefill is not None and service.decode is not None
    where = f"{scenario.source}: workload.inference.services.{index}"
    prefill, decode, mixed = service.prefill, service.decode, service.mixed
    # A mixed pool's replicas share the prefill pool's arrivals and balancer, and decode what they prefill.
    groups = prefill.replicas + (mixed.replicas if mixed is not None else [])
    feeder_shapes = shapes["prefill"] + [replace(shape, group=len(shapes["prefill"]) + i)
                                         for i, shape in enumerate(shapes.get("mixed", []))]
    feeder = ServiceRuntime(
        env, index, service.name, feeder_shapes, [g.count for g in groups], [g.limit for g in groups],
        prefill.min_replicas + (mixed.min_replicas if mixed is not None else 0),
        build_policy(scenario, "replica_scheduler"),
        build_policy(scenario, "balancer"), _pool_policy(scenario, "autoscaler", prefill.autoscaler,
                                                         f"{where}.prefill.autoscaler"),
        streams("balancer"), arrivals, source=f"{where}.prefill")
    transfer = service.kv_transfer
    precision = Precision(service.weight_precision, service.kv_precision)
    per_token = kv_bytes_per_token(scenario_model(service)) * precision.kv_scale
    decoder = DecodePoolRuntime(
        env, -1, service.name, shapes["decode"], [g.count for g in decode.replicas],
        [g.limit for g in decode.replicas], decode.min_replicas, build_policy(scenario, "replica_scheduler"),
        _pool_policy(scenario, "balancer", decode.balancer, f"{where}.decode.balancer"),
        _pool_policy(scenario, "autoscaler", decode.autoscaler, f"{where}.decode.autoscaler"),
        streams("decode.balancer"), feeder=feeder,
        transfers=KVTransfers(env, transfer.bandwidth, transfer.local_bandwidth, transfer.latency),
        kv_bytes_per_token=per_token, source=f"{where}.decode")
    return feeder, decoder


def scenario_model(service: Service) -> ModelSpec:
    return load_catalog().model(service.model)


def _pool_policy(scenario: Scenario, family: str, spec: PoolPolicy | None, where: str) -> Any:
    if spec is None:
        return build_policy(scenario, family)
    try:
        return registry.build(family, spec.name, spec.params)
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from None


def pool_policy_problems(scenario: Scenario, index: int, service: Service) -> list[str]:
    """Unknown or badly parameterised pool balancers and autoscalers, for `dcsim validate`."""
    where = f"{scenario.source}: workload.inference.services.{index}"
    problems = []
    specs: list[tuple[str, str, PolicySpec | None]] = [
        ("prefill", "autoscaler", service.prefill.autoscaler if service.prefill else None),
        ("decode", "autoscaler", service.decode.autoscaler if service.decode else None),
        ("decode", "balancer", service.decode.balancer if service.decode else None)]
    for pool, family, spec in specs:
        try:
            _pool_policy(scenario, family, spec, f"{where}.{pool}.{family}")
        except PolicyError as exc:
            problems.append(str(exc))
    return problems if service.prefill is not None else []


def wire_network(decoders: list[DecodePoolRuntime], fabric: Any, topology: Any) -> None:
    """KV transfers ride the scenario's fabric (shared with training traffic) when it has a network."""
    if topology is None:
        return
    for decoder in decoders:
        decoder.transfers.fabric = fabric
        decoder.transfers.topology = topology


def disaggregation_frames(decoders: list[DecodePoolRuntime], requests: Sequence[Request]) -> dict[str, pd.DataFrame]:
    """The kv_transfers and pools frames of a run's disaggregated services (metrics/disaggregation_summary.py)."""
    transfers: list[tuple[Any, ...]] = []
    pools: list[tuple[int, str, str]] = []
    for decoder in decoders:
        transfers.extend((r.request, decoder.name, r.source_replica, r.target_replica, r.bytes, r.start, r.end)
                         for r in decoder.transfers.records)
        pools.extend((replica.id, decoder.name, replica.shape.pool) for replica in decoder.feeder.replicas)
        pools.extend((replica.id, decoder.name, "decode") for replica in decoder.replicas)
    transfers.sort(key=lambda row: (row[5], row[0]))
    return {"kv_transfers": kv_transfers_frame(transfers), "pools": pools_frame(sorted(pools))}
