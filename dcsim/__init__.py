"""dcsim: a discrete-event simulator of AI data centers.

Public API: load_scenario, run, compare, RunResult, sweep. They load on first use, so importing a small
part of dcsim (units, errors) does not pull in pandas, simpy and the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from dcsim.version import __version__

if TYPE_CHECKING:
    from dcsim.comparison import Comparison, compare
    from dcsim.results import RunResult
    from dcsim.runner import run
    from dcsim.scenario import load_scenario
    from dcsim.sweep import sweep

_PUBLIC = {"Comparison": "dcsim.comparison", "compare": "dcsim.comparison", "RunResult": "dcsim.results",
           "run": "dcsim.runner", "load_scenario": "dcsim.scenario", "sweep": "dcsim.sweep"}

__all__ = ["Comparison", "RunResult", "__version__", "compare", "load_scenario", "run", "sweep"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'dcsim' has no attribute {name!r}")
    # dcsim.sweep is the package itself, callable (dcsim.sweep(...)) and holding dcsim.sweep.size
    value = import_module(module) if name == "sweep" else getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value
