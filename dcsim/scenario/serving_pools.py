"""Scenario schema of disaggregated serving: a prefill pool, a decode pool, and how KV caches move between them.

A service that declares `prefill:` and `decode:` (instead of `replicas:`) prefills each request on a
prefill replica, moves its KV cache to a decode replica (a transfer on the scenario's network when it
has one, else over each node's `kv_transfer.bandwidth`), and decodes it there (engine/disaggregation.py).
Each pool has its own replica groups, minimum and autoscaler; the decode pool's balancer picks the
decode replica (any registered balancer; default: the scenario's `policies.balancer`).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from dcsim.scenario.base import Strict
from dcsim.scenario.policy_spec import PolicySpec
from dcsim.scenario.units_types import Bandwidth, Duration

# 400 Gb/s: one ConnectX-7 class NIC per node, the RDMA path Splitwise and DistServe move KV caches over.
DEFAULT_KV_BANDWIDTH = 50e9
# NVLink-class copy between two replicas on one node (H100 NVLink: 450 GB/s per direction per GPU).
DEFAULT_LOCAL_BANDWIDTH = 450e9


class ReplicaGroup(Strict):
    """Replicas of one shape: `tensor_parallel` accelerators of one model each."""

    accelerator: str = Field(description="accelerator model from the catalog")
    tensor_parallel: int = Field(1, ge=1, le=64, description="accelerators per replica (one node)")
    count: int = Field(1, ge=0, le=100_000, description="replicas at the start")
    max_count: int | None = Field(None, ge=0, le=100_000,
                                  description="most replicas an autoscaler may run; default: count")

    @property
    def limit(self) -> int:
        return self.count if self.max_count is None else self.max_count

    @model_validator(mode="after")
    def _bounds(self) -> ReplicaGroup:
        if self.max_count is not None and self.max_count < self.count:
            raise ValueError(f"max_count must be >= count, got count={self.count}, max_count={self.max_count}")
        return self


PoolPolicy = PolicySpec  # a pool's balancer or autoscaler: a name, or name and parameters


class Pool(Strict):
    replicas: list[ReplicaGroup] = Field(min_length=1, description="replica groups, as a service's `replicas`")
    min_replicas: int = Field(1, ge=0, le=100_000, description="an autoscaler never goes below this many replicas")
    autoscaler: PoolPolicy | None = Field(None, description="default: the scenario's policies.autoscaler")

    @model_validator(mode="after")
    def _can_reach_minimum(self) -> Pool:
        most = sum(group.limit for group in self.replicas)
        initial = sum(group.count for group in self.replicas)
        if most == 0:
            raise ValueError("has no replicas: give a replica group count >= 1 (or max_count >= 1 with an autoscaler)")
        if initial < self.min_replicas:
            raise ValueError(f"the replica groups start {initial} replicas, fewer than "
                             f"min_replicas={self.min_replicas}")
        return self


class DecodePool(Pool):
    balancer: PoolPolicy | None = Field(
        None, description="chooses the decode replica of each prefilled request; default: policies.balancer")


class KVTransfer(Strict):
    """How a prefilled request's KV cache reaches its decode replica."""

    bandwidth: Bandwidth = Field(
        DEFAULT_KV_BANDWIDTH, description="per-node send bandwidth when the scenario has no network section "
                                          "(transfers from one node queue first come, first served)")
    local_bandwidth: Bandwidth = Field(
        DEFAULT_LOCAL_BANDWIDTH, description="copy bandwidth between two replicas on the same node")
    latency: Duration = Field(0.0, description="fixed set-up time per transfer, added to bytes / bandwidth")
