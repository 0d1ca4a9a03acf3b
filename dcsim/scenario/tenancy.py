"""Scenario sections for preemption and sharing: what suspending and resuming a job costs.

A preempted job saves a checkpoint (its bytes over `write_bandwidth`, holding its accelerators) and
pays `restart_delay` plus the read (bytes over `read_bandwidth`) when it resumes (engine/lifecycle.py).
Sizes are per job, or per model type with a default under "*". Without this section suspensions are
free (no checkpoint bytes) and a resume pays the start-up time again.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from dcsim.scenario.base import Strict
from dcsim.scenario.units_types import Bandwidth, ByteCount, Duration


class Suspension(Strict):
    """Checkpoint size and bandwidths of suspensions (preemption), and the restart delay of a resume."""

    checkpoint_size: ByteCount | dict[str, ByteCount] = Field(
        0.0, description="bytes a suspended job saves (one figure, or per model type with '*' as default)")
    write_bandwidth: Bandwidth | None = Field(None, description="checkpoint write speed per job; none: instant")
    read_bandwidth: Bandwidth | None = Field(None, description="checkpoint read speed per job; none: instant")
    restart_delay: Duration | None = Field(None, description="before a resumed job computes; default: startup")

    @field_validator("checkpoint_size")
    @classmethod
    def _sizes(cls, value: float | dict[str, float]) -> float | dict[str, float]:
        if isinstance(value, dict) and not value:
            raise ValueError("give one size or at least one model type")
        return value

    def size_of(self, model: str) -> float:
        """Checkpoint bytes of a job of this model type."""
        size = self.checkpoint_size
        if isinstance(size, dict):
            return size.get(model, size.get("*", 0.0))
        return size


class Tenant(Strict):
    """A team or virtual cluster sharing the accelerators."""

    quota: int = Field(0, ge=0, description="accelerators guaranteed to the tenant (any model); used by `priority`")
    weight: float = Field(1.0, ge=0, description="share of synthetic jobs that belong to the tenant")


class PriorityClass(Strict):
    """A priority class: jobs of a higher level preempt those of a lower one under `priority`."""

    level: int = Field(ge=-1_000_000, le=1_000_000)
    weight: float = Field(1.0, ge=0, description="share of synthetic jobs in the class")


class Tenancy(Strict):
    """Tenants with guaranteed quotas and priority classes. Synthetic jobs draw theirs by weight; trace jobs
    read them from the columns `tenant` and `priority` (names declared here; unknown names are errors)."""

    tenants: dict[str, Tenant] = Field(default_factory=dict)
    priorities: dict[str, PriorityClass] = Field(default_factory=dict)

    @field_validator("tenants", "priorities")
    @classmethod
    def _weights(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value and sum(item.weight for item in value.values()) <= 0:
            raise ValueError("weights must have a positive sum")
        if any(not name for name in value):
            raise ValueError("names must not be empty")
        return value
