"""Policies named by a scenario, built through the registry; errors name the scenario field.

The only place besides dcsim.policies that names concrete policies (through the registry).
"""

from __future__ import annotations

from typing import Any

from dcsim.errors import PolicyError
from dcsim.policies import registry
from dcsim.scenario.schema import Scenario


def build_policy(scenario: Scenario, family: str) -> Any:
    """Instantiate the scenario's policy of `family`; errors name the scenario field."""
    spec = getattr(scenario.policies, family)
    try:
        return registry.build(family, spec.name, spec.params)
    except PolicyError as exc:
        raise PolicyError(f"{scenario.source}: policies.{family}: {exc}") from None


def policy_problems(scenario: Scenario) -> list[str]:
    """Unknown policy names or bad parameters, as `dcsim validate` reports them (file prefix included)."""
    problems = []
    for family in registry.FAMILIES:
        try:
            build_policy(scenario, family)
        except PolicyError as exc:
            problems.append(str(exc))
    return problems
