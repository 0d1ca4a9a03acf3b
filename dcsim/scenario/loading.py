"""Read a scenario file: strict YAML (dcsim.inputs), --set overrides, schema and catalog checks.

Every problem is reported at once as `file: dotted.path: message, got value`; echoed values are
excerpts, so a huge or hostile input never turns into a huge message.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dcsim.errors import ScenarioError, clip, excerpt
from dcsim.inputs import InputError, load_yaml, read_text
from dcsim.scenario.checks import catalog_problems
from dcsim.scenario.schema import Scenario


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> Scenario:
    """Load, override and validate a scenario file; raise ScenarioError listing every problem."""
    path = Path(path)
    label = str(path)
    try:
        data = load_yaml(read_text(path))
    except InputError as exc:
        raise ScenarioError([f"{label}: {exc}"]) from None
    if not isinstance(data, dict):
        raise ScenarioError([f"{label}: expected a mapping at the top level, got {type(data).__name__}"])
    data = apply_overrides(data, overrides, label)
    return scenario_from_dict(data, label, base_dir=str(path.parent))


def scenario_from_dict(data: Mapping[str, Any], label: str = "<scenario>", base_dir: str = ".") -> Scenario:
    """Validate a plain dict (as from YAML) into a Scenario."""
    try:
        problems = catalog_problems(data, base_dir)
        scenario = Scenario.model_validate(dict(data))
    except ValidationError as exc:
        problems = format_validation_error(exc) + problems
    if problems:
        raise ScenarioError([clip(f"{label}: {problem}", 1000) for problem in problems])
    return scenario.with_source(label, base_dir)


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per problem: `dotted.path: message, got value`."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [clip(str(part), 40) for part in error["loc"]]
        # Drop pydantic's union-tag segments (e.g. 'synthetic') so the path matches the YAML.
        loc = [part for i, part in enumerate(loc) if i == len(loc) - 1 or part not in _UNION_TAGS]
        path = ".".join(loc) or "(top level)"
        message = _message(error)
        if error["type"] == "missing":
            lines.append(f"{path}: required field is missing")
        elif error["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown field (check spelling; `dcsim schema` lists the fields)")
        elif ", got " in message or isinstance(error.get("input"), dict):  # a whole section: the message says it
            lines.append(f"{path}: {message}")
        else:
            lines.append(f"{path}: {message}, got {excerpt(error.get('input'))}")
    return lines


def _message(error: Any) -> str:
    """pydantic's message, with any input it quotes replaced by an excerpt."""
    if error["type"] == "union_tag_invalid":
        context = error.get("ctx") or {}
        field = str(context.get("discriminator", "tag")).strip("'")
        return f"{field} must be one of {context.get('expected_tags', '')}, got {excerpt(context.get('tag'))}"
    return clip(str(error["msg"]).removeprefix("Value error, "), 500)


_UNION_TAGS = {"synthetic", "trace", "constant", "exponential", "lognormal", "uniform"}


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], label: str = "<scenario>") -> dict[str, Any]:
    """Apply `dotted.key=value` overrides; the value is parsed as YAML ("8", "2h", "[1, 2]")."""
    result = copy.deepcopy(data)
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        if not sep or not key.strip():
            raise ScenarioError([f"--set {excerpt(override)}: expected dotted.key=value"])
        try:
            value = load_yaml(raw_value)  # the same rules as a scenario file
        except InputError as exc:
            raise ScenarioError([f"--set {excerpt(override)}: value: {exc}"]) from None
        _set_path(result, key.strip().split("."), value, override)
    return result


def _set_path(node: Any, parts: list[str], value: Any, override: str) -> None:
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError([f"--set {excerpt(override)}: {clip(where)}: expected an index below {len(node)}"])
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
                raise ScenarioError([f"--set {excerpt(override)}: {clip(where)}: cannot set a field inside a "
                                     f"plain value ({excerpt(child)})"])
            node = child
