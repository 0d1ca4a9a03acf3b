"""The base of every scenario model: unknown keys are errors, instances are frozen, no NaN or inf."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dcsim.scenario.units_types import Rate


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ArrivalRate(Strict):
    """What job and request arrival processes share: the mean rate and the burstiness of gamma gaps."""

    rate: Rate = Field(description='mean arrival rate, e.g. "20/h" or "5/s"')
    cv: float = Field(1.0, ge=0.01, le=100, description="coefficient of variation of inter-arrival times (gamma only)")
