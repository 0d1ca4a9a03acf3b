"""A registered policy and its parameters, as every policy field of a scenario takes it (one definition
for `policies:` and for the pools of disaggregated services)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from dcsim.scenario.base import Strict as _Strict


class PolicySpec(_Strict):
    """A registered policy name plus keyword parameters. YAML may give just the name (`fifo`), the name
    with its parameters beside it (`{name: easy_backfill, max_scan: 500}`), or name and `params`."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        name = {"type": "string", "description": "a registered policy name (`dcsim policies` lists them)"}
        return {"anyOf": [
            name,
            {"type": "object", "required": ["name", "params"], "additionalProperties": False,
             "properties": {"name": name, "params": {"type": "object", "description": "keyword parameters"}}},
            {"type": "object", "required": ["name"], "not": {"required": ["params"]},
             "properties": {"name": name}, "additionalProperties": True,
             "description": "the name, and keyword parameters as the other keys"},
        ], "description": cls.__doc__}

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "params" not in value and "name" in value:
            return {"name": value["name"], "params": {k: v for k, v in value.items() if k != "name"}}
        return value
