"""Metric names a sweep or a capacity search may name, and targets such as "slo_attainment >= 0.99".

A metric is a per-run headline metric (`dcsim compare`'s names, plus `accelerators`), named either by
that name or by its path in summary.json ("inference.slo_attainment", "training.wait_s.mean"). It is
checked against the scenario before anything runs: a subsystem's metric needs that subsystem's workload.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from dcsim.errors import DcsimError, excerpt
from dcsim.scenario import Scenario
from dcsim.subsystems import SUBSYSTEMS, headline_metrics

_PATHS = {".".join(path): name for name, path in headline_metrics().items()}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def metric_name(text: str, scenario: Scenario, option: str = "--metric") -> str:
    """The headline name of `text` (a name or a summary path); DcsimError with a did-you-mean otherwise."""
    name = text.strip()
    name = _PATHS.get(name, name)
    known = ["accelerators", *headline_metrics()]
    if name not in known:
        close = difflib.get_close_matches(name, known + list(_PATHS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DcsimError(f"{option}: unknown metric {excerpt(text)}{hint} (known: {', '.join(known)})")
    for subsystem in SUBSYSTEMS:  # a subsystem the scenario does not have has none of its metrics
        if name in subsystem.headline and not subsystem.present(scenario):
            raise DcsimError(f"{option}: {name} is among the {subsystem.name} metrics, and {scenario.source} has no "
                             f"{subsystem.name} section")
    return name


@dataclass(frozen=True)
class Target:
    metric: str
    op: str
    value: float

    def met(self, observed: float) -> bool:
        """Whether `observed` meets the target (NaN, from no finished run, never does)."""
        return observed == observed and _OPERATORS[self.op](observed, self.value)

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">=", ">")

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


def parse_target(text: str, scenario: Scenario) -> Target:
    """"METRIC OP VALUE" with OP one of >=, <=, >, <."""
    match = re.fullmatch(r"\s*([A-Za-z_][\w.]*)\s*(>=|<=|>|<)\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*", text)
    if match is None:
        raise DcsimError(f"--target: expected METRIC OP VALUE with OP one of >=, <=, >, <, got {excerpt(text)}")
    try:
        value = float(match[3])
    except ValueError:
        raise DcsimError(f"--target: {excerpt(match[3])} is not a number") from None
    return Target(metric_name(match[1], scenario, "--target"), match[2], value)
