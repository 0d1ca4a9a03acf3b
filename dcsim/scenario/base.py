"""The base of every scenario model: unknown keys are errors, instances are frozen, no NaN or inf.

Number fields take numbers only: pydantic alone would read `pue: true` as 1.0 and `pue: "1.5"` as 1.5,
which the JSON Schema of `dcsim schema` (type number) rejects. Unit fields still take strings ("2h").
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dcsim.errors import excerpt
from dcsim.scenario.units_types import MAX_WEIGHT, Quantity, Rate


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        """Put a stand-in that no number field accepts where text or a boolean was given for a number."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        marked = {key: _mark(value, _number_kind(cls, key)) if key in fields else value for key, value in data.items()}
        return marked if any(marked[key] is not data[key] for key in data) else data


class _NotANumber:
    """A boolean or text where a number belongs: fails number validation, and prints as given."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return excerpt(self.value)


def _mark(value: Any, kind: str) -> Any:
    """`value` with each non-number replaced by a stand-in; `kind`: "" (any), "number" or "quantity"."""

    def bad(item: Any) -> bool:
        return isinstance(item, bool) or (kind == "number" and isinstance(item, str))

    if not kind:
        return value
    if bad(value):
        return _NotANumber(value)
    if isinstance(value, list) and any(bad(item) for item in value):
        return [_NotANumber(item) if bad(item) else item for item in value]
    if isinstance(value, dict) and any(bad(item) for item in value.values()):
        return {key: _NotANumber(item) if bad(item) else item for key, item in value.items()}
    return value


@cache
def _number_kind(model: type[BaseModel], field: str) -> str:
    """ "number" for fields holding plain numbers (int, float), "quantity" for numbers with units
    (which take strings such as "2h"), "" for everything else (text, booleans, free-form values)."""
    info = model.model_fields[field]
    found: set[object] = set(info.metadata)
    stack = [info.annotation]
    while stack:
        kind = stack.pop()
        found.add(kind)
        arguments = typing.get_args(kind)
        stack.extend(arguments[1:] if typing.get_origin(kind) is dict else arguments)  # dict keys are text
    if not found & {int, float} or found & {bool, str, Any}:
        return ""
    return "quantity" if any(isinstance(item, Quantity) for item in found) else "number"


class ArrivalRate(Strict):
    """What job and request arrival processes share: the mean rate and the burstiness of gamma gaps."""

    rate: Rate = Field(description='mean arrival rate, e.g. "20/h" or "5/s"')
    cv: float = Field(1.0, ge=0.01, le=100, description="coefficient of variation of inter-arrival times (gamma only)")


Weight = Annotated[float, Field(ge=0, le=MAX_WEIGHT)]  # a relative weight: room for counts, a finite sum


def check_weights(weights: list[float]) -> None:
    """Relative weights (normalised later): each from 0 to MAX_WEIGHT, with a positive sum."""
    if any(not 0 <= weight <= MAX_WEIGHT for weight in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be from 0 to {MAX_WEIGHT:.0e} with a positive sum")
