"""The layering rules of DESIGN.md, checked by parsing every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dcsim"

# module prefix -> dcsim modules it may import (prefix match). Catalog is data, read like units.
ALLOWED = {
    "dcsim.errors": [],
    "dcsim.units": ["dcsim.errors"],
    "dcsim.inputs": ["dcsim.errors"],
    "dcsim.catalog": ["dcsim.units", "dcsim.errors"],
    "dcsim.calibration": ["dcsim.calibration", "dcsim.catalog", "dcsim.units", "dcsim.errors", "dcsim.inputs"],
    "dcsim.scenario": ["dcsim.scenario", "dcsim.units", "dcsim.errors", "dcsim.catalog", "dcsim.calibration",
                       "dcsim.inputs"],
    "dcsim.model": ["dcsim.model", "dcsim.catalog", "dcsim.errors", "dcsim.units"],
    "dcsim.workload": ["dcsim.workload", "dcsim.model", "dcsim.scenario", "dcsim.errors", "dcsim.units"],
    "dcsim.policies": ["dcsim.policies", "dcsim.model", "dcsim.errors", "dcsim.units"],
    "dcsim.metrics": ["dcsim.metrics", "dcsim.model", "dcsim.errors", "dcsim.units"],
    "dcsim.engine": ["dcsim.engine", "dcsim.model", "dcsim.policies.base", "dcsim.policies.serving_base",
                     "dcsim.policies.power.base", "dcsim.metrics.protocol", "dcsim.errors", "dcsim.units",
                     "dcsim.energy.series"],
    "dcsim.energy": ["dcsim.energy", "dcsim.scenario", "dcsim.errors", "dcsim.units", "dcsim.catalog"],
    "dcsim.reporting": ["dcsim.reporting", "dcsim.results", "dcsim.units", "dcsim.errors", "dcsim.stats"],
    "dcsim.cli_calibration": ["dcsim.calibration", "dcsim.catalog", "dcsim.errors", "dcsim.reporting",
                              "dcsim.output_folders", "dcsim.scenario.accelerators"],
    "dcsim.stats": [],
    "dcsim.results": ["dcsim.errors", "dcsim.output_folders"],
    "dcsim.output_folders": ["dcsim.errors"],
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def dcsim_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("dcsim")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dcsim"):
            if node.module == "dcsim":  # `from dcsim import units` imports dcsim.units
                found |= {f"dcsim.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_module_respects_layering(path: Path) -> None:
    name = module_name(path)
    rule = next((prefix for prefix in sorted(ALLOWED, key=len, reverse=True)
                 if name == prefix or name.startswith(prefix + ".")), None)
    if rule is None:
        return  # top-level build/run/CLI code may import anything
    allowed = ALLOWED[rule]
    if name == "dcsim.policies":  # the package __init__ imports the concrete policies to register them
        allowed = [*allowed, "dcsim.policies"]
    bad = [imp for imp in dcsim_imports(path) if not any(imp == a or imp.startswith(f"{a}.") for a in allowed)]
    assert not bad, f"{name} imports {bad}; allowed: {allowed}"


def test_from_dcsim_import_is_resolved(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from dcsim import engine, units\nimport dcsim.runner\n")
    assert dcsim_imports(module) == {"dcsim.engine", "dcsim.units", "dcsim.runner"}


def test_engine_names_no_concrete_policy() -> None:
    for path in (PACKAGE / "engine").rglob("*.py"):
        for imp in dcsim_imports(path):
            concrete = ("dcsim.policies.scheduling", "dcsim.policies.placement", "dcsim.policies.registry",
                        "dcsim.policies.batching", "dcsim.policies.balancing", "dcsim.policies.autoscaling")
            assert not imp.startswith(concrete), f"{path.name} imports {imp}"


def test_reporting_never_runs_a_simulation() -> None:
    for path in (PACKAGE / "reporting").rglob("*.py"):
        assert not {i for i in dcsim_imports(path) if i.startswith(("dcsim.runner", "dcsim.engine", "dcsim.build"))}


def _edges() -> dict[str, set[str]]:
    """Each dcsim module -> the dcsim modules it names (TYPE_CHECKING imports included).

    `from pkg import name` points at pkg.name when that is a module, else at pkg."""
    modules = {module_name(path): path for path in MODULES}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dcsim"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
        edges[name] = {target for target in targets if target in modules and target != name}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_edges()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
