"""Scenario sections for preemption and sharing: what suspending and resuming a job costs.

A preempted job saves a checkpoint (its bytes over `write_bandwidth`, holding its accelerators) and
pays `restart_delay` plus the read (bytes over `read_bandwidth`) when it resumes (engine/lifecycle.py).
Sizes are per job, or per model type with a default under "*". Without this section suspensions are
free (no checkpoint bytes) and a resume pays the start-up time again.
"""

from __future__ import annotations

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
