"""Pydantic field types that accept unit strings and store SI floats."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from pydantic import BeforeValidator, Field, WithJsonSchema

from dcsim import units


def _si(kind: units.Kind) -> tuple[BeforeValidator, WithJsonSchema]:
    schema: dict[str, Any] = {"anyOf": [{"type": "number"}, {"type": "string"}], "description": units.expected(kind)}
    return BeforeValidator(lambda value: units.parse(value, kind)), WithJsonSchema(schema)


_DURATION = _si("duration")
_POWER = _si("power")
_RATE = _si("rate")
_BYTES = _si("bytes")
_BANDWIDTH = _si("bandwidth")

Duration: TypeAlias = Annotated[float, _DURATION[0], _DURATION[1], Field(ge=0)]
PositiveDuration: TypeAlias = Annotated[float, _DURATION[0], _DURATION[1], Field(gt=0)]
Power: TypeAlias = Annotated[float, _POWER[0], _POWER[1], Field(ge=0)]
Rate: TypeAlias = Annotated[float, _RATE[0], _RATE[1], Field(gt=0)]
Bytes: TypeAlias = Annotated[float, _BYTES[0], _BYTES[1], Field(gt=0)]
ByteCount: TypeAlias = Annotated[float, _BYTES[0], _BYTES[1], Field(ge=0)]
Bandwidth: TypeAlias = Annotated[float, _BANDWIDTH[0], _BANDWIDTH[1], Field(gt=0)]
