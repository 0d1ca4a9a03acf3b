"""Pydantic field types that accept unit strings and store SI floats, each within a plausible range.

The ranges keep every later product and sum finite (1e308 watts or seconds would overflow to inf in
energy and time sums) and keep the simulation clock moving (intervals of at least a millisecond).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeAlias

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from dcsim import units

YEAR_S = 365.25 * 86400.0
MAX_DURATION_S = 100 * YEAR_S  # no run, job or latency lasts a century
MIN_INTERVAL_S = 1e-3  # periodic events closer than this stall the clock without changing results
MAX_POWER_W = 1e6  # no single host, switch, port or accelerator draws a megawatt
MAX_BYTES = 1e21  # a zettabyte: far above any storage system
MIN_BANDWIDTH = 1.0  # bytes/s; transfers at less would outlast any run
MAX_BANDWIDTH = 1e15  # bytes/s (8 Pbit/s): far above any link or storage system
MIN_RATE = 1.0 / MAX_DURATION_S  # one event per century
MAX_RATE = 1e6  # events per second
MAX_WEIGHT = 1e12  # relative weights (mixes, gang sizes): room for counts, never an overflowing sum
MAX_SCALE = 1e6  # replay speed-ups and slow-downs of a trace
MAX_GANG = 2**20  # accelerators of one job: above any cluster's size, far below int64 overflow
MAX_TOKENS = 10**9  # tokens of one request


@dataclass(frozen=True)
class Quantity:
    """Field metadata: parse a unit string, let pydantic check the sign (its usual "greater than 0"
    message), then require low <= value <= high (low < value when low_open). The JSON Schema says so."""

    kind: units.Kind
    unit: str
    low: float
    high: float
    high_text: str
    low_open: bool = False
    low_why: str = ""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        sign = {"gt": 0.0} if self.low_open or self.low > 0 else {"ge": 0.0}
        number = core_schema.float_schema(allow_inf_nan=False, **sign)  # type: ignore[arg-type]
        checked = core_schema.no_info_after_validator_function(self._check, number)
        return core_schema.no_info_before_validator_function(lambda value: units.parse(value, self.kind), checked)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        number: dict[str, Any] = {"type": "number", "maximum": self.high}
        number["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        return {"anyOf": [number, {"type": "string"}], "description": units.expected(self.kind)}

    def _check(self, value: float) -> float:
        if value < self.low or (self.low_open and value == self.low):
            why = f" ({self.low_why})" if self.low_why else ""
            raise ValueError(f"must be {'>' if self.low_open else '>='} {self.low:.4g} {self.unit}{why}, "
                             f"got {value:.4g} {self.unit}")
        if value > self.high:
            raise ValueError(f"must be <= {self.high:.4g} {self.unit} ({self.high_text}; more is not plausible), "
                             f"got {value:.4g} {self.unit}")
        return value


_CENTURY = "100 years"
Duration: TypeAlias = Annotated[float, Quantity("duration", "s", 0.0, MAX_DURATION_S, _CENTURY)]
PositiveDuration: TypeAlias = Annotated[float, Quantity("duration", "s", 0.0, MAX_DURATION_S, _CENTURY, low_open=True)]
Interval: TypeAlias = Annotated[float, Quantity("duration", "s", MIN_INTERVAL_S, MAX_DURATION_S, _CENTURY,
                                                low_why="shorter intervals stall the simulation clock")]
Power: TypeAlias = Annotated[float, Quantity("power", "W", 0.0, MAX_POWER_W, "1 MW")]
PositivePower: TypeAlias = Annotated[float, Quantity("power", "W", 0.0, MAX_POWER_W, "1 MW", low_open=True)]
Rate: TypeAlias = Annotated[float, Quantity("rate", "per s", MIN_RATE, MAX_RATE, "a million per second",
                                            low_why="one per century")]
Bytes: TypeAlias = Annotated[float, Quantity("bytes", "B", 0.0, MAX_BYTES, "1 ZB", low_open=True)]
ByteCount: TypeAlias = Annotated[float, Quantity("bytes", "B", 0.0, MAX_BYTES, "1 ZB")]
Bandwidth: TypeAlias = Annotated[float, Quantity("bandwidth", "B/s", MIN_BANDWIDTH, MAX_BANDWIDTH, "8 Pbit/s",
                                                 low_why="slower transfers would outlast any run")]
