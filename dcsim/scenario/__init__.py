"""Scenario files: schema, loading with overrides, catalog checks."""

from dcsim.scenario.loading import apply_overrides, load_scenario, scenario_from_dict
from dcsim.scenario.schema import Scenario

__all__ = ["Scenario", "apply_overrides", "load_scenario", "scenario_from_dict"]
