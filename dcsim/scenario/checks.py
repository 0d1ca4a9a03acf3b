"""Scenario checks that need the catalog: accelerator and model-type names must exist."""

from __future__ import annotations

from dcsim.catalog import load_catalog
from dcsim.errors import CatalogError
from dcsim.scenario.schema import Scenario


def catalog_problems(scenario: Scenario) -> list[str]:
    """Return `dotted.path: problem` lines for names the catalog does not know."""
    catalog = load_catalog()
    problems: list[str] = []
    present: set[str] = set()
    for index, pool in enumerate(scenario.cluster.node_pools):
        try:
            present.add(catalog.canonical_accelerator(pool.accelerator))
        except CatalogError as exc:
            problems.append(f"cluster.node_pools.{index}.accelerator: {exc}")
    training = scenario.workload.training
    if training is None:
        return problems
    if training.reference_accelerator is not None:
        try:
            catalog.canonical_accelerator(training.reference_accelerator)
        except CatalogError as exc:
            problems.append(f"workload.training.reference_accelerator: {exc}")
    for model in training.models:
        try:
            catalog.check_model_type(model)
        except CatalogError as exc:
            problems.append(f"workload.training.models.{model}: {exc}")
    if training.constraint is not None:
        for index, name in enumerate(training.constraint.accelerators):
            try:
                canonical = catalog.canonical_accelerator(name)
            except CatalogError as exc:
                problems.append(f"workload.training.constraint.accelerators.{index}: {exc}")
                continue
            if present and canonical not in present:
                problems.append(
                    f"workload.training.constraint.accelerators.{index}: {name!r} is not in the cluster "
                    f"(node pools have {', '.join(sorted(present))})"
                )
    return problems
