"""Power policies (budget, demand response, idle shutdown, carbon-aware deferral, combined)."""

from dcsim.policies.power import budget, carbon_aware, combined, idle_shutdown  # noqa: F401
