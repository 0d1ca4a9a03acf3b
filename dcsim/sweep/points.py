"""Turn sweep points into validated runs: each point's scenario, each (point, seed) a Task with its key.

Every point is resolved and checked (schema, catalog, policy names and parameters, replica shapes)
before anything runs, so a bad value fails the whole sweep at once with one line and nothing run.
A key that is not a scenario field gets a did-you-mean from the fields beside it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from dcsim.errors import DcsimError, ScenarioError, clip, excerpt
from dcsim.scenario import Scenario, scenario_from_dict
from dcsim.scenario.loading import apply_overrides
from dcsim.sweep.spec import Point
from dcsim.version import __version__


@dataclass(frozen=True)
class Task:
    """One simulation of a sweep: everything a worker (local or on a Dask cluster) needs, as plain data."""

    key: str
    point: int  # index into the sweep's points
    seed: int
    scenario: dict[str, Any]  # the resolved scenario, as JSON-ready data
    label: str
    base_dir: str


def run_key(scenario: dict[str, Any], seed: int, version: str = __version__) -> str:
    """Hash of the resolved scenario, the seed and the dcsim version: the identity of a stored run.

    Two points that resolve to the same scenario share their runs; a new dcsim version reruns everything.
    Files a scenario names (traces) enter by path, not content.
    """
    text = json.dumps({"scenario": scenario, "seed": seed, "version": version}, sort_keys=True,
                      separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def override_text(key: str, value: Any) -> str:
    """`key=value` in the YAML flow form apply_overrides parses back to the same value."""
    return f"{key}={json.dumps(value)}"


def point_label(point: Point) -> str:
    return ", ".join(f"{key}={_short(value)}" for key, value in point.items())


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def resolve_point(base: Scenario, point: Point) -> Scenario:
    """The base scenario with the point's values set; ScenarioError (with did-you-mean) when invalid."""
    data = base.model_dump(mode="json")
    label = f"{base.source} [{clip(point_label(point), 200)}]"
    try:
        updated = apply_overrides(data, [override_text(key, value) for key, value in point.items()], label)
        scenario = scenario_from_dict(updated, label, base_dir=base.base_dir)
    except ScenarioError:
        for key in point:  # a key that is not a field explains the failure better than the schema's words
            _check_key(data, key, base.source)
        raise
    problems = _build_problems(scenario)
    if problems:
        raise ScenarioError(problems)
    return scenario


def _build_problems(scenario: Scenario) -> list[str]:
    """What `dcsim validate` finds beyond the schema: policy names and parameters, replica shapes."""
    from dcsim.build.policies import policy_problems
    from dcsim.build.serving import service_problems

    return policy_problems(scenario) + service_problems(scenario)


def _check_key(data: dict[str, Any], key: str, source: str) -> None:
    """Refuse a dotted key whose path leaves the scenario's fields, naming the closest field.

    Called once the point failed validation. Sections that are absent (None) are left to the schema's
    message; a missing name in a free-form mapping (model mix, policy parameters) would have passed.
    """
    field_value(data, key, source)


def field_value(data: dict[str, Any], key: str, source: str, option: str = "sweep key") -> Any:
    """The value at dotted `key` of a scenario's data (None inside an absent section); DcsimError with a
    did-you-mean when the path names no field."""
    node: Any = data
    parts = key.split(".")
    for depth, part in enumerate(parts):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise DcsimError(f"{source}: {option} {key}: {clip(where)}: expected an index below {len(node)}")
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                close = difflib.get_close_matches(part, [str(k) for k in node], n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join('.'.join([*parts[:depth], c]) for c in close)}?" if close else ""
                raise DcsimError(f"{source}: {option} {key}: {clip(where)} is not a scenario field{hint}")
            node = node[part]
        else:
            return None  # inside a plain value or an absent section: the schema decides
    return node


def make_tasks(base: Scenario, points: list[Point], seeds: list[int]) -> tuple[list[Scenario], list[Task]]:
    """The resolved scenario of every point and one Task per (point, seed), point-major.

    Seeds are shared by all points (common random numbers): workload streams depend only on the seed.
    """
    scenarios = []
    problems: list[str] = []
    for point in points:
        try:
            scenarios.append(resolve_point(base, point))
        except ScenarioError as exc:
            problems.extend(exc.problems)
            break  # the first bad point is enough to name the field and the value
    if problems:
        raise ScenarioError(problems[:1] if len(problems) == 1 else problems)
    tasks = []
    for index, scenario in enumerate(scenarios):
        data = scenario.model_dump(mode="json")
        for seed in seeds:
            tasks.append(Task(run_key(data, seed), index, seed, data, scenario.source, scenario.base_dir))
    return scenarios, tasks


def seed_list(base: Scenario, seeds: int) -> list[int]:
    if isinstance(seeds, bool) or not 1 <= seeds <= 10_000:
        raise DcsimError(f"--seeds: expected a number from 1 to 10000, got {excerpt(seeds)}")
    return list(range(base.seed, base.seed + seeds))
