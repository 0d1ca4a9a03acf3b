"""Tenant, priority class, checkpoint size and restart delay of each job (scenario/tenancy.py).

Synthetic jobs draw tenant and class by weight from their own random stream ("tenancy"), so adding
tenants changes no other draw. Trace jobs read them from optional columns; a tenant or class name the
scenario does not declare, or a size or delay that is not a number >= 0 (units allowed), is an error
naming the file, line and column: a job of an unknown tenant cannot be scheduled fairly, so it is not
silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dcsim import units
from dcsim.errors import TraceError, UnitError, excerpt
from dcsim.model import Job
from dcsim.scenario.schema import SyntheticTraining, TraceColumns, TraceTraining


def draw_tenancy(spec: SyntheticTraining, jobs: Sequence[Job], streams: Callable[[str], np.random.Generator]) -> None:
    tenancy = spec.tenancy
    if tenancy is None:
        return
    rng = streams("tenancy")
    for names, levels, field in ((list(tenancy.tenants), None, "tenant"),
                                 (list(tenancy.priorities), [c.level for c in tenancy.priorities.values()],
                                  "priority")):
        if not names:
            continue
        table = tenancy.tenants if field == "tenant" else tenancy.priorities
        weights = np.array([table[n].weight for n in names], dtype=float)
        picks = rng.choice(len(names), size=len(jobs), p=weights / weights.sum())
        for job, pick in zip(jobs, picks, strict=True):
            if levels is None:
                job.tenant = names[pick]
            else:
                job.priority = levels[pick]


def read_tenancy(spec: TraceTraining, columns: TraceColumns, frame: pd.DataFrame, rows: np.ndarray,
                 lines: np.ndarray, jobs: Sequence[Job], path: Path) -> None:
    """Set the jobs' lifecycle fields from their trace rows (`rows[i]` is job i's row)."""
    tenancy = spec.tenancy
    for field in ("tenant", "priority", "checkpoint_size", "restart_delay"):
        column = getattr(columns, field)
        if column is None:
            continue
        cells = frame[column].to_numpy()[rows]
        for job, cell, line in zip(jobs, cells, lines[rows], strict=True):
            text = str(cell).strip()
            if not text:
                continue
            where = f"{path}: line {line}: column {column!r}"
            if field == "tenant":
                if tenancy is None or text not in tenancy.tenants:
                    known = ", ".join(tenancy.tenants) if tenancy is not None and tenancy.tenants else "none"
                    raise TraceError(f"{where}: unknown tenant {excerpt(text)} "
                                     f"(declared under tenancy.tenants: {known})")
                job.tenant = text
            elif field == "priority":
                if tenancy is None or text not in tenancy.priorities:
                    known = ", ".join(tenancy.priorities) if tenancy is not None and tenancy.priorities else "none"
                    raise TraceError(f"{where}: unknown priority class {excerpt(text)} (declared under "
                                     f"tenancy.priorities: {known})")
                job.priority = tenancy.priorities[text].level
            else:
                kind: units.Kind = "bytes" if field == "checkpoint_size" else "duration"
                try:
                    value = units.parse(_number_or_text(text), kind)
                except UnitError as exc:
                    raise TraceError(f"{where}: {exc}") from None
                if not 0 <= value < float("inf"):
                    raise TraceError(f"{where}: must be >= 0, got {excerpt(text)}")
                if field == "checkpoint_size":
                    job.checkpoint_bytes = value
                else:
                    job.restart_delay = value


def _number_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
