"""Scenario schema of inference services: replicas, request sources, SLOs.

A service serves one catalog model with replicas of one or more shapes (accelerator x tensor
parallelism). Its requests come from a synthetic generator or a CSV trace (Azure LLM preset).
Which replica scheduler, load balancer and autoscaler run is set under `policies:` for every
service at once, so `dcsim compare --policy balancer=...` varies them like the training scheduler.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from dcsim.errors import excerpt
from dcsim.scenario.base import ArrivalRate, Strict
from dcsim.scenario.kv_cache import PagedKV, block_size_problem
from dcsim.scenario.serving_pools import DecodePool, KVTransfer, Pool, ReplicaGroup
from dcsim.scenario.units_types import MAX_SCALE, MAX_TOKENS, Bandwidth, Bytes, Duration, Interval, PositiveDuration

# --- token-count distributions -------------------------------------------------------------------


class _Clipped(Strict):
    max: int | None = Field(None, ge=1, le=MAX_TOKENS, description="clip draws to at most this many tokens")


class ConstantTokens(Strict):
    distribution: Literal["constant"]
    value: int = Field(ge=1, le=MAX_TOKENS)


class UniformTokens(Strict):
    distribution: Literal["uniform"]
    low: int = Field(ge=1, le=MAX_TOKENS)
    high: int = Field(ge=1, le=MAX_TOKENS)

    @model_validator(mode="after")
    def _ordered(self) -> UniformTokens:
        if self.high < self.low:
            raise ValueError(f"high must be >= low, got low={self.low}, high={self.high}")
        return self


class LogNormalTokens(_Clipped):
    distribution: Literal["lognormal"]
    median: float = Field(gt=0, le=MAX_TOKENS)
    sigma: float = Field(1.0, ge=0, le=10, description="standard deviation of log(tokens)")


class ExponentialTokens(_Clipped):
    distribution: Literal["exponential"]
    mean: float = Field(gt=0, le=MAX_TOKENS)


TokenDistribution = Annotated[ConstantTokens | UniformTokens | LogNormalTokens | ExponentialTokens,
                              Field(discriminator="distribution")]


# --- request sources -----------------------------------------------------------------------------


class RequestArrivals(ArrivalRate):
    """Poisson, gamma (bursty when cv > 1), constant spacing, or a diurnal (sinusoidal) Poisson rate."""

    process: Literal["poisson", "gamma", "constant", "diurnal"] = "poisson"
    amplitude: float = Field(0.5, ge=0, lt=1, description="diurnal: rate swings by +-amplitude x rate")
    period: Interval = Field(86400.0, description="diurnal: length of one cycle")
    peak: Duration = Field(50400.0, description="diurnal: time within the cycle of the highest rate")


class SyntheticRequests(Strict):
    source: Literal["synthetic"]
    count: int = Field(ge=1, le=10_000_000, description="number of requests to generate")
    arrival: RequestArrivals
    prompt_tokens: TokenDistribution
    output_tokens: TokenDistribution
    sessions: int | None = Field(
        None, ge=1, le=10**9, description="draw each request's session key from this many sessions (for affinity "
                                "balancing); default: every request its own session")


class RequestColumns(Strict):
    """Which CSV column (JSON Lines field) holds each request field; `key` (session / conversation id)
    and `prefix_hashes` (list of prefix-block hashes, ints or strings) are optional."""

    arrival: str = "arrival"
    prompt_tokens: str = "prompt_tokens"
    output_tokens: str = "output_tokens"
    key: str | None = None
    prefix_hashes: str | None = None


MOONCAKE_BLOCK = 512  # tokens per hash_ids entry in Mooncake's traces


class TraceRequests(Strict):
    source: Literal["trace"]
    path: str = Field(description="CSV or JSON Lines file, relative to the scenario file")
    format: Literal["csv", "azure", "jsonl", "mooncake"] = Field(
        "csv", description="azure presets the columns of the Azure LLM inference trace "
                           "(TIMESTAMP, ContextTokens, GeneratedTokens); mooncake the fields of the Mooncake "
                           "JSON Lines trace (timestamp in ms, input_length, output_length, hash_ids of 512 "
                           "tokens); when not set, a .jsonl/.ndjson path is read as JSON Lines, others as CSV")
    columns: RequestColumns | None = None
    time_unit: Literal["ms", "s", "datetime"] | None = Field(
        None, description="unit of arrival times; default: seconds, or date-times when most cells are not numbers")
    block_size: int | None = Field(None, ge=1, le=1_048_576,
                                   description="tokens covered by each prefix hash (mooncake: 512)")
    rate_scale: float = Field(1.0, ge=1 / MAX_SCALE, le=MAX_SCALE,
                              description="replay faster (2 = twice the request rate) or slower")
    limit: int | None = Field(None, ge=1, description="use only the first N usable requests by arrival time")

    @property
    def reader(self) -> str:
        """csv or jsonl: the explicit format's, else from the file's extension."""
        if "format" in self.model_fields_set:
            return "jsonl" if self.format in ("jsonl", "mooncake") else "csv"
        return "jsonl" if self.path.lower().endswith((".jsonl", ".ndjson")) else "csv"

    @property
    def hash_block_size(self) -> int | None:
        """Tokens per prefix hash: as given, 512 for the mooncake preset."""
        if self.block_size is None and self.format == "mooncake":
            return MOONCAKE_BLOCK
        return self.block_size


RequestSource = Annotated[SyntheticRequests | TraceRequests, Field(discriminator="source")]


# --- services ------------------------------------------------------------------------------------


class SLO(Strict):
    """A request meets the SLO when its TTFT and its TPOT are both within the given targets."""

    ttft: PositiveDuration | None = Field(None, description="time-to-first-token target")
    tpot: PositiveDuration | None = Field(None, description="time-per-output-token target")


class Service(Strict):
    name: str = Field(min_length=1)
    model: str = Field(description="model from the catalog, e.g. Llama-2-70B or llm-13b")
    replicas: list[ReplicaGroup] = Field(
        default_factory=list, description="replica groups that prefill and decode (omit with prefill/decode pools)")
    prefill: Pool | None = Field(None, description="disaggregated serving: the pool that prefills (with decode)")
    decode: DecodePool | None = Field(None, description="disaggregated serving: the pool that decodes (with prefill)")
    mixed: Pool | None = Field(None, description="disaggregated serving: replicas that take arrivals beside the "
                                                 "prefill pool and decode them themselves (Splitwise's mixed pool)")
    kv_transfer: KVTransfer = Field(KVTransfer(), description="disaggregated serving: how KV caches move")
    min_replicas: int = Field(1, ge=0, le=100_000, description="an autoscaler never goes below this many replicas")
    max_batch: int = Field(256, ge=1, le=1_000_000, description="most requests in a replica's batch")
    kv_cache: Bytes | None = Field(
        None, description="KV-cache bytes per replica; default: memory_utilization x accelerator memory "
                          "x tensor_parallel - weights")
    memory_utilization: float = Field(0.9, gt=0, le=1, description="share of accelerator memory the server uses")
    weights_load_bandwidth: Bandwidth = Field(
        2e9, description="storage read bandwidth for loading weights; cold start = weight bytes / this")
    weights_from: str | None = Field(
        None, description="storage tier the weights are read from (over the network); replaces "
                          "weights_load_bandwidth")
    weight_precision: Literal["bf16", "fp8", "int8", "int4"] = Field(
        "bf16", description="bytes per weight (2, 1, 1, 0.5) and the peak FLOP/s of the weight GEMMs (fp8 and int8 "
                            "need the accelerator's 8-bit tensor path; int4 is weight-only, computed at 16 bits)")
    kv_precision: Literal["bf16", "fp8", "int8"] = Field(
        "bf16", description="bytes per KV-cache element (2, 1, 1): KV capacity and decode's context term")
    slo: SLO = SLO()
    requests: RequestSource
    context_overflow: Literal["reject", "truncate"] = Field(
        "reject", description="requests longer than the model's context: left out and counted (reject), or cut "
                              "to fit (truncate: the prompt to context - 1 tokens, then the output to what remains)")
    paged_kv: PagedKV | None = Field(
        None, description="count the KV cache in blocks with prefix caching and a preemption policy "
                          "(docs/inference.md); default: token-granular, recompute on preemption")

    @model_validator(mode="after")
    def _prefix_blocks_fit(self) -> Service:
        if isinstance(self.requests, TraceRequests):
            problem = block_size_problem(self.requests.hash_block_size, self.paged_kv)
            if problem is not None:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _can_reach_minimum(self) -> Service:
        if self.prefill is not None or self.decode is not None or self.mixed is not None:
            if self.prefill is None and self.decode is None:
                raise ValueError("mixed: a mixed pool goes with prefill and decode pools; use replicas instead")
            if self.prefill is None:
                raise ValueError("decode: a decode pool needs a prefill pool; add prefill: {replicas: [...]}")
            if self.decode is None:
                raise ValueError("prefill: a prefill pool needs a decode pool; add decode: {replicas: [...]}")
            if self.replicas:
                raise ValueError("replicas: give replicas (prefill and decode on one replica) or prefill and "
                                 "decode pools, not both")
            return self
        most = sum(group.limit for group in self.replicas)
        initial = sum(group.count for group in self.replicas)
        if most == 0:
            raise ValueError("has no replicas: give a replica group count >= 1 (or max_count >= 1 with an autoscaler)")
        if self.min_replicas > most:
            raise ValueError(f"min_replicas={self.min_replicas} exceeds the {most} replicas the groups allow")
        if initial < self.min_replicas:
            raise ValueError(f"the replica groups start {initial} replicas, fewer than min_replicas="
                             f"{self.min_replicas}; raise a group's count")
        return self


class Inference(Strict):
    services: list[Service] = Field(min_length=1)
    fast_forward: bool = Field(
        True, description="advance decode iterations in closed form between events; false steps every "
                          "iteration (slow, for checking)")

    @model_validator(mode="after")
    def _unique_names(self) -> Inference:
        seen: set[str] = set()
        for service in self.services:
            if service.name in seen:
                raise ValueError(f"service names must be unique; {excerpt(service.name)} appears twice")
            seen.add(service.name)
        return self
