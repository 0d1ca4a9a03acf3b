"""Policy families, their registry, and the built-in policies (imported here to register them)."""

from dcsim.policies import autoscaling, balancing, batching  # noqa: F401
from dcsim.policies.placement import pack, spread, topology_aware  # noqa: F401
from dcsim.policies.power import budget, carbon_aware, combined, idle_shutdown  # noqa: F401
from dcsim.policies.registry import build, describe, names, register
from dcsim.policies.scheduling import (  # noqa: F401
    easy_backfill,
    fifo,
    gavel,
    las,
    priority,
    sjf,
    srtf,
    tiresias,
)

__all__ = ["build", "describe", "names", "register"]
