"""The `failures` section: what fails, how often, why, for how long, and what softens it.

Component classes: `accelerator` (one accelerator of a node), `node` (a host: all its accelerators)
`link` (a host's network connection: the multi-node jobs on it stop, and the node is out of
service until repaired) and `switch` (a switch of the network model: flows re-route around it, and
jobs and hosts it cuts off stop; engine/network_failures.py). Each class has a time to failure
per component, exponential (`mtbf`) or Weibull (`weibull: {shape, scale}`), and a mix of causes,
each with a share and a repair time.
`profile: NAME` starts from a shipped profile (catalog/failure_profiles.yaml, with its source);
classes given here replace the profile's. Times to failure run whether a component is busy or idle.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dcsim.errors import clip, excerpt
from dcsim.scenario.base import Strict
from dcsim.scenario.units_types import Duration, PositiveDuration

COMPONENT_CLASSES = ("accelerator", "node", "link", "switch", "fabric_link", "storage")


class Repair(Strict):
    """Time a failed component is out of service: fixed, exponential or lognormal around a mean."""

    mean: PositiveDuration = Field(description="mean repair time")
    distribution: Literal["fixed", "exponential", "lognormal"] = "fixed"
    sigma: float = Field(1.0, gt=0, le=5, description="lognormal: standard deviation of log repair time")


class Cause(Strict):
    share: float = Field(gt=0, le=1, description="fraction of this class's failures with this cause")
    repair: Repair | PositiveDuration = Field(description="repair time: a duration, or {mean, distribution}")

    def repair_spec(self) -> Repair:
        return self.repair if isinstance(self.repair, Repair) else Repair(mean=self.repair)


class Weibull(Strict):
    shape: float = Field(gt=0, le=100, description="< 1: infant mortality, 1: exponential, > 1: wear-out")
    scale: PositiveDuration = Field(description="characteristic life")


class ComponentFailures(Strict):
    """Time to failure of each component of one class, and the causes of its failures."""

    mtbf: PositiveDuration | None = Field(None, description="mean time between failures (exponential)")
    weibull: Weibull | None = None
    causes: dict[str, Cause] = Field(
        default_factory=lambda: {"failure": Cause(share=1.0, repair=3600.0)},
        description="cause name -> share and repair time; shares sum to 1")

    @model_validator(mode="after")
    def _one_distribution(self) -> ComponentFailures:
        if (self.mtbf is None) == (self.weibull is None):
            raise ValueError("give exactly one of mtbf or weibull")
        return self

    @field_validator("causes")
    @classmethod
    def _shares(cls, causes: dict[str, Cause]) -> dict[str, Cause]:
        if not causes:
            raise ValueError("needs at least one cause")
        total = sum(cause.share for cause in causes.values())
        if abs(total - 1.0) > 1e-4:
            raise ValueError(f"cause shares must sum to 1, got {total:.6g}")
        return causes

    @property
    def mean_time_to_failure(self) -> float:
        if self.weibull is not None:
            return self.weibull.scale * math.gamma(1.0 + 1.0 / self.weibull.shape)
        assert self.mtbf is not None
        return self.mtbf


class Lemons(Strict):
    """A fraction of nodes whose components fail more often (bad parts that keep coming back)."""

    fraction: float = Field(gt=0, le=1, description="share of nodes that are lemons (drawn per seed)")
    rate_multiplier: float = Field(gt=0, le=1000, description="failure rate of a lemon over a normal node")


class Spares(Strict):
    """Spare nodes of a pool: one replaces a failed node after `swap_delay` when the repair takes longer."""

    pool: str = Field(description="node pool the spares belong to")
    nodes: int = Field(ge=1, le=1_000_000, description="spare nodes (not part of the pool's count)")
    swap_delay: Duration = Field(1800.0, description="time to swap a spare in")


class Failures(Strict):
    profile: str | None = Field(None, description="shipped failure profile to start from (catalog)")
    accelerator: ComponentFailures | None = None
    node: ComponentFailures | None = None
    link: ComponentFailures | None = None
    switch: ComponentFailures | None = Field(None, description="a switch of the network model (needs `network`)")
    fabric_link: ComponentFailures | None = Field(
        None, description="a physical link of the network model, host links included (needs `network`)")
    storage: ComponentFailures | None = Field(
        None, description="a shared storage tier (needs `storage`): dataset streams stall, checkpoints are skipped")
    detection: Duration = Field(
        0.0, description="from a failure until the job notices: it holds its healthy accelerators meanwhile")
    requeue: Literal["front", "back"] = Field(
        "front", description="an interrupted job goes back to the head of the queue (keeps its place) or the end")
    lemons: Lemons | None = None
    spares: list[Spares] = Field(default_factory=list)
    request_retries: int = Field(
        3, ge=0, le=1000, description="times a request on a failed replica is retried before it fails")


def check_failures(failures: Failures, pools: dict[str, int], network: bool, storage: bool) -> None:
    """Spares name a pool and are no more than its nodes; a profile exists; some class is given;
    switch failures need a network model."""
    for name in ("switch", "fabric_link"):
        if getattr(failures, name) is not None and not network:
            raise ValueError(f"failures.{name}: {name} failures need a network section (its topology has them)")
    if failures.storage is not None and not storage:
        raise ValueError("failures.storage: storage failures need a storage section with a shared tier")
    for index, spares in enumerate(failures.spares):
        where = f"failures.spares.{index}"
        if spares.pool not in pools:
            raise ValueError(f"{where}.pool: no node pool named {excerpt(spares.pool)} "
                             f"(pools: {clip(', '.join(pools))})")
        if spares.nodes > pools[spares.pool]:
            raise ValueError(f"{where}.nodes: {spares.nodes} spares for pool {spares.pool!r} of "
                             f"{pools[spares.pool]} nodes; expected at most the pool's count")
    if failures.profile is not None and failures.profile not in failure_profiles():
        raise ValueError(f"failures.profile: unknown profile {excerpt(failures.profile)} "
                         f"(profiles: {', '.join(failure_profiles())})")
    if failures.profile is None and not any(getattr(failures, name) is not None for name in COMPONENT_CLASSES):
        raise ValueError("failures: give a profile or at least one of " + ", ".join(COMPONENT_CLASSES))


@cache
def failure_profiles() -> dict[str, dict[str, Any]]:
    """Shipped profiles (catalog/failure_profiles.yaml): name -> {source, classes...}."""
    import yaml

    text = resources.files("dcsim.catalog").joinpath("failure_profiles.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text)["profiles"])


def component_classes(failures: Failures) -> dict[str, ComponentFailures]:
    """The classes of a run: the profile's, replaced by those the scenario gives."""
    classes: dict[str, ComponentFailures] = {}
    if failures.profile is not None:
        profile = failure_profiles()[failures.profile]
        for name in COMPONENT_CLASSES:
            if name in profile:
                classes[name] = ComponentFailures.model_validate(profile[name])
    for name in COMPONENT_CLASSES:
        given = getattr(failures, name)
        if given is not None:
            classes[name] = given
    return classes
