"""Every error a user can cause is a DcsimError subclass, so the CLI can print one line and exit 2.

The message is written for a person: file, field or line, what was expected, what was found.
"""

from __future__ import annotations

import reprlib


class DcsimError(Exception):
    """Base of all user-facing dcsim errors."""


class UnitError(DcsimError, ValueError):
    """A quantity string that cannot be parsed ("80GiB", "700W", "2h")."""


class ScenarioError(DcsimError):
    """A scenario file that is missing, unreadable or invalid; may carry several problems."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[type, tuple[list[str]]]:
        return (type(self), (self.problems,))  # survives pickling, e.g. from a worker process


class CatalogError(DcsimError):
    """An unknown accelerator or model name, or a broken catalog file."""


class TraceError(DcsimError):
    """A trace file that cannot be read: missing file, missing column, no usable row."""


class PolicyError(DcsimError):
    """An unknown policy name, bad policy parameters, or an invalid decision made by a policy."""


class ResultError(DcsimError):
    """A results folder that cannot be written or read back."""


class CalibrationError(DcsimError):
    """A measurement file that cannot be read, or a fit that cannot be made from the points given."""



def excerpt(value: object, limit: int = 80) -> str:
    """repr(value), cut to `limit` characters with an ellipsis: error messages never echo a whole input.

    Containers are shown a few levels and items deep (reprlib), so a huge or deeply nested value costs
    no more to show than a short one."""
    text = repr(value[: limit + 1]) if isinstance(value, str) else _SHORT.repr(value)
    return clip(text, limit)


def clip(text: str, limit: int = 80) -> str:
    """`text` cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict, _SHORT.maxset = 3, 8, 8, 6, 6
_SHORT.maxstring = _SHORT.maxother = 80
