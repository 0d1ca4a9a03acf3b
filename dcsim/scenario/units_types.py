"""Pydantic field types that accept unit strings and store SI floats."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from dcsim import units


def _quantity(kind: units.Kind, *, ge: float | None = None, gt: float | None = None) -> Any:
    schema = {"anyOf": [{"type": "number"}, {"type": "string"}], "description": units.expected(kind)}
    return Annotated[
        float,
        BeforeValidator(lambda value: units.parse(value, kind)),
        WithJsonSchema(schema),
        Field(ge=ge, gt=gt),
    ]


Duration = _quantity("duration", ge=0)
PositiveDuration = _quantity("duration", gt=0)
Power = _quantity("power", ge=0)
Rate = _quantity("rate", gt=0)
