"""Deferrable jobs and their deadlines (carbon-aware power policies, dcsim/policies/power/).

Synthetic jobs are picked from their own random stream ("deferral"), so marking jobs deferrable
changes no other draw. A trace gives a per-job `deadline` column: the time from submit by which the
job should complete (a duration, units allowed); a row with a deadline is deferrable, an empty cell
is not, and a negative one (a deadline before its submit) is an error naming file, line and column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dcsim import units
from dcsim.errors import TraceError, UnitError, excerpt
from dcsim.model import Job
from dcsim.scenario.schema import SyntheticTraining, TraceColumns


def draw_deferral(spec: SyntheticTraining, jobs: Sequence[Job], streams: Callable[[str], np.random.Generator]) -> None:
    deferrable = spec.deferrable
    if deferrable is None:
        return
    picks = streams("deferral").random(len(jobs)) < deferrable.fraction
    for job, pick in zip(jobs, picks, strict=True):
        if pick:
            job.deferrable = True
            job.deadline = job.submit + job.work + deferrable.slack


def read_deadlines(columns: TraceColumns, frame: pd.DataFrame, rows: np.ndarray, lines: np.ndarray,
                   jobs: Sequence[Job], path: Path) -> None:
    column = columns.deadline
    if column is None:
        return
    cells = frame[column].to_numpy()[rows]
    for job, cell, line in zip(jobs, cells, lines[rows], strict=True):
        text = str(cell).strip()
        if not text or text.lower() == "nan":
            continue
        try:
            value = units.parse(_number_or_text(text), "duration")
        except UnitError as exc:
            raise TraceError(f"{path}: line {line}: column {column!r}: {exc}") from None
        if not value >= 0 or value == float("inf"):
            raise TraceError(f"{path}: line {line}: column {column!r}: deadline before its submit (expected a "
                             f"duration >= 0 after submit), got {excerpt(text)}")
        job.deferrable = True
        job.deadline = job.submit + value


def _number_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
