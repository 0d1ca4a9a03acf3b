"""Scenario fields of the power policies that belong to the workload: which jobs are deferrable.

The policies themselves are configured under `policies.power` (dcsim/policies/power/).
"""

from __future__ import annotations

from pydantic import Field

from dcsim.scenario.base import Strict
from dcsim.scenario.units_types import Duration


class Deferrable(Strict):
    """A share of synthetic jobs a carbon-aware power policy may hold back; each must complete by
    submit + its run time on the reference accelerator + `slack`."""

    fraction: float = Field(ge=0, le=1, description="share of jobs that are deferrable")
    slack: Duration = Field(description="time beyond the job's reference run time it may be held or wait")
