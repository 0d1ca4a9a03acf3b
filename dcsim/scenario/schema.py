"""The scenario file schema: frozen pydantic models, SI floats inside, unit strings accepted.

`dcsim schema` prints the JSON Schema of `Scenario` so editors can autocomplete scenario files.
Checks that need the catalog (accelerator and model names) live in `scenario/checks.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, WithJsonSchema, field_validator, model_validator

from dcsim.errors import clip, excerpt
from dcsim.scenario.accelerators import Definitions
from dcsim.scenario.base import ArrivalRate, Weight, check_weights
from dcsim.scenario.base import Strict as _Strict
from dcsim.scenario.energy import Energy
from dcsim.scenario.failures import Failures, check_failures
from dcsim.scenario.inference import Inference
from dcsim.scenario.network import Checkpointing, Communication, DatasetStreaming, Network, Storage
from dcsim.scenario.policy_spec import PolicySpec
from dcsim.scenario.power import Deferrable
from dcsim.scenario.tenancy import Suspension, Tenancy
from dcsim.scenario.units_types import (
    MAX_DURATION_S,
    MAX_GANG,
    MAX_SCALE,
    Bandwidth,
    Duration,
    PositiveDuration,
    PositivePower,
    Power,
)

# --- cluster -------------------------------------------------------------------------------------


class HostPower(_Strict):
    """Power of one host (CPUs, memory, fans, NICs), excluding its accelerators."""

    idle: Power = Field(300.0, description="host power when none of its accelerators is allocated")
    busy: Power | None = Field(None, description="host power when any accelerator is allocated; default idle")

    @property
    def busy_w(self) -> float:
        return self.idle if self.busy is None else self.busy


class NodePool(_Strict):
    """`count` identical nodes, each with `accelerators_per_node` accelerators of one model."""

    name: str = Field(min_length=1)
    count: int = Field(ge=1, le=1_000_000, description="number of nodes")
    accelerator: str = Field(description="accelerator model from the catalog, e.g. H100, A100, TPU-v4")
    accelerators_per_node: int = Field(8, ge=1, le=1024)
    host_power: HostPower = HostPower()
    power_cap: PositivePower | None = Field(
        None, description="accelerator power limit; caps busy power and slows steps per the calibrated model"
    )
    network_bandwidth: Bandwidth | None = Field(
        None, description="scale-out (NIC) bandwidth per accelerator, one direction; default: the catalog's. "
                          "Without a network section it sets the cost of a job spread over nodes")


class Cluster(_Strict):
    node_pools: list[NodePool] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Cluster:
        seen: set[str] = set()
        for pool in self.node_pools:
            if pool.name in seen:
                raise ValueError(f"node pool names must be unique; {excerpt(pool.name)} appears twice")
            seen.add(pool.name)
        return self


# --- distributions -------------------------------------------------------------------------------


class Constant(_Strict):
    distribution: Literal["constant"]
    value: PositiveDuration


class Exponential(_Strict):
    distribution: Literal["exponential"]
    mean: PositiveDuration


class LogNormal(_Strict):
    distribution: Literal["lognormal"]
    median: PositiveDuration
    sigma: float = Field(1.0, ge=0, le=10, description="standard deviation of log(duration)")


class Uniform(_Strict):
    distribution: Literal["uniform"]
    low: PositiveDuration
    high: PositiveDuration

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high must be >= low, got low={self.low} s, high={self.high} s")
        return self


DurationDistribution = Annotated[Constant | Exponential | LogNormal | Uniform, Field(discriminator="distribution")]


class Arrivals(ArrivalRate):
    """Job arrival process: Poisson, or gamma inter-arrivals for trace-like burstiness (cv > 1)."""

    process: Literal["poisson", "gamma", "constant"] = "poisson"


class AcceleratorsPerJob(_Strict):
    """Gang size distribution: `values` accelerators with relative `weights`."""

    values: list[Annotated[int, Field(ge=1, le=MAX_GANG)]] = Field(default_factory=lambda: [1], min_length=1)
    weights: list[Weight] | None = None

    @field_validator("values")
    @classmethod
    def _powers_of_two(cls, values: list[int]) -> list[int]:
        for value in values:
            if value < 1 or value > MAX_GANG or value & (value - 1):
                raise ValueError(f"each value must be a power of two from 1 to {MAX_GANG}, got {excerpt(value)}")
        return values

    @model_validator(mode="after")
    def _weights_match(self) -> AcceleratorsPerJob:
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(f"weights needs {len(self.values)} entries (one per value), got {len(self.weights)}")
            check_weights(self.weights)
        return self


class Steps(_Strict):
    """Work given as a number of steps times the step time on the reference accelerator."""

    count: int = Field(ge=1, le=10**12)
    step_time: PositiveDuration = Field(description="seconds per step on the reference accelerator")

    @model_validator(mode="after")
    def _plausible(self) -> Steps:
        if self.count * self.step_time > MAX_DURATION_S:
            raise ValueError(f"count x step_time must be <= {MAX_DURATION_S:.4g} s (100 years), "
                             f"got {self.count * self.step_time:.4g} s")
        return self


class Constraint(_Strict):
    """A fraction of jobs that must run on one of the listed accelerator models."""

    fraction: float = Field(ge=0, le=1)
    accelerators: list[str] = Field(min_length=1)


# --- training workload ---------------------------------------------------------------------------


class _TrainingCommon(_Strict):
    reference_accelerator: str | None = Field(
        None, description="accelerator on which durations are measured; default: the catalog reference (V100)"
    )
    models: dict[str, Weight] = Field(
        default_factory=lambda: {"generic": 1.0},
        description="model-type mix (name -> weight); the type sets relative speed per accelerator",
    )
    estimate_error: float = Field(
        0.0, ge=0, le=100, description="user runtime estimates = true work x U(1, 1 + estimate_error)"
    )
    startup: Duration = Field(0.0, description="time a job holds its accelerators before computing")
    constraint: Constraint | None = None
    communication: Communication = Field(
        default_factory=Communication, description="gradient all-reduce (used when the scenario has a network)")
    dataset: DatasetStreaming | None = Field(None, description="input streamed from a storage tier")
    checkpoint: Checkpointing | None = Field(None, description="model state written to a storage tier")
    suspension: Suspension | None = Field(None, description="cost of preempting and resuming a job")
    tenancy: Tenancy | None = Field(None, description="tenants (quotas) and priority classes of the jobs")
    batch_size: dict[str, Annotated[float, Field(gt=0, le=1e7)]] = Field(
        default_factory=dict, description="samples per accelerator per step, by model type; a model left out "
                                          "runs at its median measured batch (a trace column overrides per job)")

    @field_validator("models")
    @classmethod
    def _mix(cls, models: dict[str, float]) -> dict[str, float]:
        if not models:
            raise ValueError("needs at least one model type")
        check_weights(list(models.values()))
        return models


class SyntheticTraining(_TrainingCommon):
    source: Literal["synthetic"]
    jobs: int = Field(ge=1, le=10_000_000, description="number of jobs to generate")
    arrival: Arrivals
    accelerators: AcceleratorsPerJob = AcceleratorsPerJob()
    duration: DurationDistribution | None = Field(None, description="run time on the reference accelerator")
    steps: Steps | None = None
    deferrable: Deferrable | None = Field(
        None, description="jobs a carbon-aware power policy may defer (traces: columns.deadline)")

    @model_validator(mode="after")
    def _one_work_kind(self) -> SyntheticTraining:
        if (self.duration is None) == (self.steps is None):
            raise ValueError("give exactly one of duration or steps")
        return self


class TraceColumns(_Strict):
    """Which CSV column holds each job field. The trace must have submit, duration (or a start and an
    end column) and accelerators columns (under these names unless mapped); model, accelerator_type
    (one type or several as "V100|T4") and name are optional."""

    @model_validator(mode="after")
    def _start_and_end(self) -> TraceColumns:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end columns (the run time is end - start), or neither")
        return self

    submit: str = "submit"
    duration: str = "duration"
    # A start/end pair instead of a duration: the run time is end - start (both times, like submit).
    start: str | None = None
    end: str | None = None
    accelerators: str = "accelerators"
    model: str | None = None
    accelerator_type: str | None = None
    name: str | None = None
    # Lifecycle (scenario/tenancy.py, workload/tenancy.py): names declared under tenancy; sizes and delays
    # as numbers (bytes, seconds) or unit strings.
    tenant: str | None = None
    priority: str | None = None
    checkpoint_size: str | None = None
    restart_delay: str | None = None
    deadline: str | None = None  # time from submit by which the job should complete; a job with one is deferrable
    batch_size: str | None = None  # samples per accelerator per step; an empty cell: the model's default


class TraceTraining(_TrainingCommon):
    source: Literal["trace"]
    path: str = Field(description="CSV file, relative to the scenario file")
    format: Literal["csv", "philly"] = Field(
        "csv", description="philly presets the columns of the Philly trace (timestamp, duration, num_gpus)"
    )
    columns: TraceColumns | None = None
    time_unit: Literal["ms", "s", "min", "h"] = Field(
        "s", description="unit of plain numbers in the submit, duration, start and end columns; cells may "
                         "also carry their own unit (\"90s\", \"2h\") or be date-times (submit, start, end)")
    time_scale: float = Field(1.0, ge=1 / MAX_SCALE, le=MAX_SCALE,
                              description="multiply inter-arrival times (0.5 = twice the rate)")
    limit: int | None = Field(None, ge=1, description="use only the first N usable jobs by submit time")
    min_duration: Duration = Field(0.0, description="skip (and count) jobs shorter than this")


TrainingWorkload = Annotated[SyntheticTraining | TraceTraining, Field(discriminator="source")]


class Workload(_Strict):
    training: TrainingWorkload | None = None
    inference: Inference | None = None


# --- policies, energy, top level -----------------------------------------------------------------


class Policies(_Strict):
    """Training scheduler and placement; replica scheduler, load balancer and autoscaler of every service.

    Replicas take accelerators from the same pools, best fit on one node (not through `placement`)."""

    scheduler: PolicySpec = PolicySpec(name="fifo")
    placement: PolicySpec = PolicySpec(name="pack")
    replica_scheduler: PolicySpec = PolicySpec(name="continuous_batching")
    balancer: PolicySpec = PolicySpec(name="round_robin")
    autoscaler: PolicySpec = PolicySpec(name="fixed")
    power: PolicySpec = PolicySpec(name="none")  # budget, demand_response, idle_shutdown, carbon_aware, combined


class Reporting(_Strict):
    gantt_max_jobs: int = Field(300, ge=0, description="draw the job Gantt chart only up to this many jobs")


_ONE_OR_MANY_PATHS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


class Scenario(_Strict):
    """A complete, validated scenario. Times in seconds, power in watts."""

    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(0, ge=0)
    horizon: PositiveDuration | None = Field(None, description="stop simulating here; default: when all work is done")
    cluster: Cluster
    workload: Workload
    policies: Policies = Policies()
    energy: Energy = Energy()
    reporting: Reporting = Reporting()
    network: Network | None = Field(None, description="scale-out network; without it jobs use the calibrated sync")
    storage: Storage | None = Field(None, description="storage tiers for datasets, checkpoints and model weights")
    failures: Failures | None = Field(None, description="component failures, repairs and spares")
    calibration: Annotated[list[str], WithJsonSchema(_ONE_OR_MANY_PATHS)] = Field(
        default_factory=list,
        description="calibration overlays written by `dcsim calibration fit`, relative to this file; "
                    "their fits take precedence over the shipped catalog (later files win)",
    )
    accelerators: Definitions = Field(
        default_factory=dict, description="user-defined accelerators (name -> datasheet figures); their speeds are "
                                          "extrapolated by the fitted models (docs/calibration.md)")
    catalog: Annotated[list[str], WithJsonSchema(_ONE_OR_MANY_PATHS)] = Field(
        default_factory=list, description="catalog overlay files (`format: dcsim-catalog/1`) defining accelerators, "
                                          "relative to this file")

    _base_dir: str = PrivateAttr(default=".")
    _source: str = PrivateAttr(default="<scenario>")

    @property
    def base_dir(self) -> str:
        """Folder of the scenario file; relative trace paths are resolved against it."""
        return self._base_dir

    @model_validator(mode="after")
    def _tiers_exist(self) -> Scenario:
        tiers = {tier.name: tier for tier in self.storage.tiers} if self.storage is not None else {}
        uses: list[tuple[str, str]] = []
        training = self.workload.training
        if training is not None:
            for field in ("dataset", "checkpoint"):
                spec = getattr(training, field)
                if spec is not None and spec.tier is not None:
                    uses.append((f"workload.training.{field}.tier", spec.tier))
        inference = self.workload.inference
        for index, service in enumerate(inference.services if inference is not None else ()):
            if service.weights_from is not None:
                uses.append((f"workload.inference.services.{index}.weights_from", service.weights_from))
        for where, name in uses:
            if name not in tiers:
                choices = ", ".join(tiers) or "none: add a storage section"
                raise ValueError(f"{where}: no storage tier named {excerpt(name)} (tiers: {clip(choices)})")
        return self

    @model_validator(mode="after")
    def _spares_fit(self) -> Scenario:
        if self.failures is not None:
            check_failures(self.failures, {pool.name: pool.count for pool in self.cluster.node_pools},
                           self.network is not None,
                           self.storage is not None and any(t.kind != "node_local" for t in self.storage.tiers))
        return self

    @field_validator("calibration", "catalog", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def calibration_paths(self) -> list[Path]:
        """Overlay files, resolved against the scenario's folder."""
        return [Path(self.base_dir) / path for path in self.calibration]

    @property
    def source(self) -> str:
        """Where the scenario came from (its file), for error messages."""
        return self._source

    def with_source(self, source: str, base_dir: str) -> Scenario:
        self._source = source
        self._base_dir = base_dir
        return self
