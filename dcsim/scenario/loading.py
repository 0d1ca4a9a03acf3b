"""Read a scenario file: YAML safe_load, --set overrides, schema and catalog checks.

Every problem is reported at once as `file: dotted.path: message, got value`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dcsim.errors import ScenarioError
from dcsim.scenario.checks import catalog_problems
from dcsim.scenario.schema import Scenario


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> Scenario:
    """Load, override and validate a scenario file; raise ScenarioError listing every problem."""
    path = Path(path)
    label = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError([f"{label}: file not found"]) from None
    except OSError as exc:
        raise ScenarioError([f"{label}: cannot read: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([f"{label}: {where}invalid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise ScenarioError([f"{label}: expected a mapping at the top level, got {type(data).__name__}"])
    data = apply_overrides(data, overrides, label)
    return scenario_from_dict(data, label, base_dir=str(path.parent))


def scenario_from_dict(data: Mapping[str, Any], label: str = "<scenario>", base_dir: str = ".") -> Scenario:
    """Validate a plain dict (as from YAML) into a Scenario."""
    problems = catalog_problems(data, base_dir)
    try:
        scenario = Scenario.model_validate(dict(data))
    except ValidationError as exc:
        problems = format_validation_error(exc) + problems
    if problems:
        raise ScenarioError([f"{label}: {problem}" for problem in problems])
    return scenario.with_source(label, base_dir)


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: `dotted.path: message, got value`."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        # Drop pydantic's union-tag segments (e.g. 'synthetic') so the path matches the YAML.
        loc = [part for i, part in enumerate(loc) if i == len(loc) - 1 or part not in _UNION_TAGS]
        path = ".".join(loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            lines.append(f"{path}: required field is missing")
        elif error["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown field (check spelling; `dcsim schema` lists the fields)")
        elif ", got " in message or isinstance(error.get("input"), dict):  # a whole section: the message says it
            lines.append(f"{path}: {message}")
        else:
            lines.append(f"{path}: {message}, got {error.get('input')!r}")
    return lines


_UNION_TAGS = {"synthetic", "trace", "constant", "exponential", "lognormal", "uniform"}


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], label: str = "<scenario>") -> dict[str, Any]:
    """Apply `dotted.key=value` overrides; the value is parsed as YAML ("8", "2h", "[1, 2]")."""
    result = copy.deepcopy(data)
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        if not sep or not key.strip():
            raise ScenarioError([f"--set {override!r}: expected dotted.key=value"])
        try:
            value = yaml.safe_load(raw_value)
        except yaml.YAMLError:
            raise ScenarioError([f"--set {override!r}: value is not valid YAML"]) from None
        _set_path(result, key.strip().split("."), value, override)
    return result


def _set_path(node: Any, parts: list[str], value: Any, override: str) -> None:
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError([f"--set {override!r}: {where}: expected an index below {len(node)}"])
            if last:
                node[int(part)] = value
                return
            node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
                return
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, str) and depth == 1 and parts[0] == "policies":
                child = node[part] = {"name": child}  # `scheduler: fifo` shorthand, so `scheduler.param=v` works
            elif not isinstance(child, dict | list):
                raise ScenarioError([f"--set {override!r}: {where}: cannot set a field inside a plain value "
                                     f"({child!r})"])
            node = child
