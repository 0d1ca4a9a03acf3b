"""The base of every scenario model: unknown keys are errors, instances are frozen, no NaN or inf."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
