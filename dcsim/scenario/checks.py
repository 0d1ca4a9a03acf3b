"""Scenario checks that need the catalog: accelerator and model-type names must exist, overlays load.

They read the raw (YAML) dict, so `dcsim validate` reports unknown names together with schema
errors instead of one round after the other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dcsim.calibration import Calibration, load_calibration
from dcsim.catalog import AcceleratorSpec, Catalog
from dcsim.errors import CalibrationError, CatalogError, clip, excerpt
from dcsim.scenario.accelerators import definitions_of, extend

_LONGEST_NAME = 100  # accelerator and model names are short; longer text is not looked up (nor echoed whole)


def catalog_problems(data: Any, base_dir: str = ".") -> list[str]:
    """Return `dotted.path: problem` lines for names the catalog does not know."""
    problems: list[str] = []
    broken = False  # user-defined accelerators that failed are reported once, not again at every use
    try:
        accelerators = definitions_of(data, base_dir, label="")  # the loader names the scenario file
    except CatalogError as exc:
        problems.append(str(exc))
        accelerators, broken = (), True
    inline = _get(data, "accelerators")
    declared = {str(name).lower() for name in inline} if isinstance(inline, dict) else set()
    catalog = extend(accelerators)
    calibration = _calibration(data, base_dir, problems, accelerators)

    def check(path: str, value: Any, lookup: Callable[[str], object]) -> str | None:
        if not isinstance(value, str):
            return None  # the schema reports wrong types
        if len(value) > _LONGEST_NAME:
            problems.append(f"{path}: not a catalog name (longer than {_LONGEST_NAME} characters), "
                            f"got {excerpt(value)}")
            return None
        try:
            lookup(value)
        except CatalogError as exc:
            if not (str(exc).startswith("unknown accelerator") and (broken or value.lower() in declared)):
                problems.append(f"{path}: {exc}")
            return None
        return value

    present: set[str] = set()
    pools = _get(data, "cluster", "node_pools")
    for index, pool in enumerate(pools if isinstance(pools, list) else []):
        name = check(f"cluster.node_pools.{index}.accelerator", _get(pool, "accelerator"), catalog.accelerator)
        if name is not None:
            present.add(catalog.canonical_accelerator(name))
    _service_problems(data, catalog, present, check, problems)
    training = _get(data, "workload", "training")
    if not isinstance(training, dict):
        return problems
    check("workload.training.reference_accelerator", training.get("reference_accelerator"), catalog.accelerator)
    models = training.get("models")
    for model in models if isinstance(models, dict) else {}:
        check(f"workload.training.models.{clip(str(model), 40)}", model, lambda name: _check_model(calibration, name))
    batches = training.get("batch_size")
    for model in batches if isinstance(batches, dict) else {}:
        check(f"workload.training.batch_size.{clip(str(model), 40)}", model,
              lambda name: _check_model(calibration, name))
    names = _get(training, "constraint", "accelerators")
    for index, name in enumerate(names if isinstance(names, list) else []):
        path = f"workload.training.constraint.accelerators.{index}"
        if check(path, name, catalog.accelerator) and present:
            canonical = catalog.canonical_accelerator(name)
            if canonical not in present:
                have = ", ".join(sorted(present))
                problems.append(f"{path}: {excerpt(name)} is not in the cluster (node pools have {have})")
    return problems


def _service_problems(data: Any, catalog: Catalog, present: set[str],
                      check: Callable[[str, Any, Callable[[str], object]], str | None], problems: list[str]) -> None:
    """Each service's model must be an LLM the catalog knows; its replica accelerators must be in the cluster."""
    from dcsim.calibration.inference import kv_bytes_per_token

    def llm(name: str) -> None:
        try:
            kv_bytes_per_token(catalog.model(name))
        except CalibrationError as exc:
            raise CatalogError(f"{exc}; services need an LLM (e.g. Llama-2-70B, llm-13b)") from None

    services = _get(data, "workload", "inference", "services")
    for index, service in enumerate(services if isinstance(services, list) else []):
        path = f"workload.inference.services.{index}"
        check(f"{path}.model", _get(service, "model"), llm)
        groups = _get(service, "replicas")
        for group_index, group in enumerate(groups if isinstance(groups, list) else []):
            where = f"{path}.replicas.{group_index}.accelerator"
            name = check(where, _get(group, "accelerator"), catalog.accelerator)
            if name is not None and present and catalog.canonical_accelerator(name) not in present:
                have = ", ".join(sorted(present))
                problems.append(f"{where}: {excerpt(name)} is not in the cluster (node pools have {have})")


def _calibration(data: Any, base_dir: str, problems: list[str],
                 accelerators: tuple[AcceleratorSpec, ...]) -> Calibration:
    overlays = _get(data, "calibration")
    overlays = [overlays] if isinstance(overlays, str) else overlays
    paths: list[Path] = []
    for index, name in enumerate(overlays if isinstance(overlays, list) else []):
        if not isinstance(name, str):
            continue  # the schema reports wrong types
        path = Path(base_dir) / name
        try:
            load_calibration([path], accelerators)
        except CalibrationError as exc:
            problems.append(f"calibration.{index}: {exc}")
            continue
        paths.append(path)
    return load_calibration(paths, accelerators)


def _check_model(calibration: Calibration, name: str) -> None:
    if name == "generic" or calibration.training.has_model(name):
        return
    known = calibration.model_types()
    raise CatalogError(_unknown_model(name, known))


def _unknown_model(name: str, known: list[str]) -> str:
    import difflib
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (f"no training calibration for model {excerpt(name)}{hint} (calibrated: {', '.join(known)}; or llm-<N>b, "
            "or fit your own with `dcsim calibration fit`)")


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
