"""dcsim: a discrete-event simulator of AI data centers.

Public API: load_scenario, run, compare, RunResult.
"""

__version__ = "0.1.0"

from dcsim.compare import Comparison, compare
from dcsim.results import RunResult
from dcsim.runner import run
from dcsim.scenario import load_scenario

__all__ = ["Comparison", "RunResult", "__version__", "compare", "load_scenario", "run"]
