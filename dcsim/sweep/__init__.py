"""Sweeps and capacity search: many scenario variants x seeds, on local processes or a Dask cluster.

`dcsim.sweep(scenario, grid=[...], seeds=N, output=...)` runs a sweep (see dcsim.sweep.api), and
`dcsim.sweep.size(...)` searches the smallest value of an integer field meeting a target (see
dcsim.sweep.sizing). The package is itself callable, so `dcsim.sweep(...)` works whether or not this
package was imported first. Modules load on first use: importing it costs nothing.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dcsim.sweep.api import SweepResult
    from dcsim.sweep.sizing import SizeResult

__all__ = ["SizeResult", "SweepResult", "size", "sweep"]


def sweep(*args: Any, **kwargs: Any) -> SweepResult:
    """Run a sweep; see dcsim.sweep.api.sweep for the arguments."""
    from dcsim.sweep.api import sweep as run_sweep

    return run_sweep(*args, **kwargs)


def size(*args: Any, **kwargs: Any) -> SizeResult:
    """Capacity search; see dcsim.sweep.sizing.size for the arguments."""
    from dcsim.sweep.sizing import size as run_size

    return run_size(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name in ("SweepResult", "SizeResult"):
        from dcsim.sweep import api, sizing

        return getattr(api if name == "SweepResult" else sizing, name)
    raise AttributeError(f"module 'dcsim.sweep' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """This package, callable as dcsim.sweep(...)."""

    def __call__(self, *args: Any, **kwargs: Any) -> SweepResult:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
