"""Reading trace cells as times and durations: plain numbers in a stated unit, unit strings ("90s",
"2h"), or date-times; and cells that list several accelerator types ("V100|T4").

Shared by the training and request trace readers. A cell that cannot be read becomes NaN (or None),
and the reader counts its row under a reason: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from dcsim import units
from dcsim.errors import CatalogError, UnitError

TIME_UNITS = {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
TYPE_SEPARATOR = "|"


def parse_seconds(values: pd.Series, unit: str = "s") -> np.ndarray:
    """Seconds from cells holding numbers in `unit` or duration strings with their own unit ("5min")."""
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float) * TIME_UNITS[unit]
    texts: list[str] = values.astype(str).str.strip().tolist()
    # A cell with a colon (a date-time, read by parse_times) is no number with a unit: NUMBER_UNIT would
    # not match it, so it is left NaN without the per-cell look (80,000 date cells in the Philly trace).
    pending = np.flatnonzero(np.isnan(numeric) & np.array([text != "" and ":" not in text for text in texts],
                                                          dtype=bool))
    if len(pending):
        parsed: dict[str, float] = {}
        looks = units.NUMBER_UNIT.match  # a cell that is not a number with a unit (a date) fails without a raise
        for index in pending.tolist():
            text = texts[index]
            if text not in parsed:
                try:
                    parsed[text] = units.parse(text, "duration") if looks(text) else float("nan")
                except UnitError:
                    parsed[text] = float("nan")
            numeric[index] = parsed[text]
    return numeric


def parse_times(values: pd.Series, unit: str = "s") -> np.ndarray:
    """Seconds as numbers (in `unit`) or unit strings, or date-times converted to seconds (time zones
    respected).

    The column is read as seconds when most of its cells are numbers or unit strings, else as
    date-times; in date-time mode a bare number is not a time (it would be read as a year), so its
    row is counted as bad.
    """
    seconds = parse_seconds(values, unit)
    if np.isfinite(seconds).sum() >= (values != "").sum() * 0.5:
        return seconds
    numeric = pd.to_numeric(values, errors="coerce")
    stamps = pd.to_datetime(values.where(numeric.isna()), errors="coerce", format="mixed", utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)


def parse_type_sets(texts: list[str], canonical: Callable[[str], str]) -> list[tuple[str, ...] | bool | None]:
    """Per cell: the accelerator models it allows ("V100|T4" -> ("V100", "T4"), canonical names, in
    order, without repeats), None for an empty cell (any model), or False when a name is unknown."""
    cache: dict[str, str | None] = {}
    result: list[tuple[str, ...] | bool | None] = []
    for cell in texts:
        names = [part.strip() for part in cell.split(TYPE_SEPARATOR) if part.strip()]
        if not names:
            result.append(None)
            continue
        models: list[str] = []
        for name in names:
            if name not in cache:
                try:
                    cache[name] = canonical(name)
                except CatalogError:
                    cache[name] = None
            model = cache[name]
            if model is None:
                models = []
                break
            if model not in models:
                models.append(model)
        result.append(tuple(models) if models else False)
    return result
