"""Scenario checks that need the catalog: accelerator and model-type names must exist.

They read the raw (YAML) dict, so `dcsim validate` reports unknown names together with schema
errors instead of one round after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dcsim.catalog import load_catalog
from dcsim.errors import CatalogError


def catalog_problems(data: Any) -> list[str]:
    """Return `dotted.path: problem` lines for names the catalog does not know."""
    catalog = load_catalog()
    problems: list[str] = []

    def check(path: str, value: Any, lookup: Callable[[str], object]) -> str | None:
        if not isinstance(value, str):
            return None  # the schema reports wrong types
        try:
            lookup(value)
        except CatalogError as exc:
            problems.append(f"{path}: {exc}")
            return None
        return value

    present: set[str] = set()
    pools = _get(data, "cluster", "node_pools")
    for index, pool in enumerate(pools if isinstance(pools, list) else []):
        name = check(f"cluster.node_pools.{index}.accelerator", _get(pool, "accelerator"), catalog.accelerator)
        if name is not None:
            present.add(catalog.canonical_accelerator(name))
    training = _get(data, "workload", "training")
    if not isinstance(training, dict):
        return problems
    check("workload.training.reference_accelerator", training.get("reference_accelerator"), catalog.accelerator)
    models = training.get("models")
    for model in models if isinstance(models, dict) else {}:
        check(f"workload.training.models.{model}", model, catalog.check_model_type)
    names = _get(training, "constraint", "accelerators")
    for index, name in enumerate(names if isinstance(names, list) else []):
        path = f"workload.training.constraint.accelerators.{index}"
        if check(path, name, catalog.accelerator) and present:
            canonical = catalog.canonical_accelerator(name)
            if canonical not in present:
                have = ", ".join(sorted(present))
                problems.append(f"{path}: {name!r} is not in the cluster (node pools have {have})")
    return problems


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
