"""dcsim: a discrete-event simulator of AI data centers.

Public API: load_scenario, run, compare, RunResult.
"""

__version__ = "0.1.0"

from dcsim.results import RunResult  # noqa: E402
from dcsim.runner import run  # noqa: E402
from dcsim.scenario import load_scenario  # noqa: E402

__all__ = ["RunResult", "__version__", "load_scenario", "run"]
