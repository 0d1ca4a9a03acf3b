"""`dcsim schema` describes exactly what dcsim accepts: every shipped scenario and every scenario in the
docs passes both the JSON Schema (checked with jsonschema) and the real loader; bad input fails both."""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dcsim.errors import ScenarioError
from dcsim.inputs import load_yaml
from dcsim.scenario import load_scenario
from dcsim.scenario.schema import Scenario
from tests.helpers import ROOT, SCENARIOS

VALIDATOR = jsonschema.Draft202012Validator(Scenario.model_json_schema())
SHIPPED_CALIBRATION = ROOT / "dcsim" / "catalog" / "calibration.yaml"


def schema_errors(data: Any) -> list[str]:
    return [f"{'.'.join(map(str, error.absolute_path))}: {error.message[:200]}"
            for error in VALIDATOR.iter_errors(data)]


def doc_scenarios() -> list[tuple[str, Path, str]]:
    """(id, folder the document sits in, YAML text) of each ```yaml block that is a whole scenario."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), flags=re.S)):
            if re.search(r"^cluster:", block, flags=re.M):
                found.append((f"{doc.name}#{index}", doc.parent, block))
    return found


def load_beside(folder: Path, text: str) -> Scenario:
    """Load `text` with the real loader from a file in `folder`, so relative paths resolve as documented."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=folder, delete=True) as handle:
        handle.write(text)
        handle.flush()
        return load_scenario(handle.name)


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(Scenario.model_json_schema())


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_pass_schema_and_loader(path: Path) -> None:
    assert schema_errors(load_yaml(path.read_text())) == []
    load_scenario(path)


def test_the_docs_have_scenarios() -> None:
    assert any(name.startswith("README.md") for name, _, _ in doc_scenarios())


@pytest.mark.parametrize(("name", "folder", "text"), doc_scenarios(), ids=[name for name, _, _ in doc_scenarios()])
def test_doc_scenarios_pass_schema_and_loader(name: str, folder: Path, text: str) -> None:
    assert schema_errors(load_yaml(text)) == []
    load_beside(folder, text)


QUICKSTART = load_yaml((SCENARIOS / "quickstart.yaml").read_text())


def changed(path: str, value: Any) -> dict[str, Any]:
    """The quickstart scenario with the field at dotted `path` set to `value`."""
    data = copy.deepcopy(QUICKSTART)
    node = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[last] = value
    return data


def load_data(data: dict[str, Any]) -> Scenario:
    return load_beside(SCENARIOS, yaml.safe_dump(data))


@pytest.mark.parametrize(("path", "value"), [
    ("policies.scheduler", "fifo"),
    ("policies.scheduler", {"name": "easy_backfill", "max_scan": 500}),
    ("policies.scheduler", {"name": "easy_backfill", "params": {"max_scan": 500}}),
    ("calibration", str(SHIPPED_CALIBRATION)),
    ("calibration", [str(SHIPPED_CALIBRATION)]),
    ("horizon", "36h"),
    ("horizon", 3600),
    ("energy.pue", 1),
    ("cluster.node_pools.0.host_power.idle", "2.5kW"),
])
def test_accepted_forms_pass_both(path: str, value: Any) -> None:
    data = changed(path, value)
    assert schema_errors(data) == []
    load_data(data)


@pytest.mark.parametrize(("path", "value"), [
    ("energy.pue", True),
    ("energy.pue", "1.5"),
    ("energy.pue", 1e308),
    ("energy.colour", "green"),
    ("cluster.node_pools.0.count", 0),
    ("cluster.node_pools.0.count", True),
    ("cluster.node_pools.0.host_power.idle", 1e308),
    ("workload.training.jobs", 10**9),
    ("workload.training.arrival.rate", True),
    ("horizon", 1e308),
    ("policies.scheduler", {"name": "easy_backfill", "params": {}, "max_scan": 5}),
    ("policies.scheduler", {"max_scan": 5}),
    ("policies.scheduler", 3),
    ("calibration", 3),
    ("seed", -1),
])
def test_refused_forms_fail_both(path: str, value: Any) -> None:
    data = changed(path, value)
    assert schema_errors(data) != []
    with pytest.raises(ScenarioError):
        load_data(data)


def doc_fragments() -> list[tuple[str, str]]:
    """(id, YAML text) of each ```yaml block in README.md and docs/ that is part of a scenario."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), flags=re.S)):
            if not re.search(r"^cluster:", block, flags=re.M):
                found.append((f"{doc.name}#{index}", block))
    return found


def merged(base: Any, part: Any) -> Any:
    """`part` laid over `base` key by key; a section of another kind (its `source` differs) replaces."""
    if not isinstance(base, dict) or not isinstance(part, dict) or base.get("source", part.get("source")) != part.get(
            "source", base.get("source")):
        return copy.deepcopy(part)
    result = copy.deepcopy(base)
    for key, value in part.items():
        result[key] = merged(result[key], value) if key in result else copy.deepcopy(value)
    return result


@pytest.mark.parametrize(("name", "text"), doc_fragments(), ids=[name for name, _ in doc_fragments()])
def test_doc_fragments_pass_the_schema_inside_a_scenario(name: str, text: str) -> None:
    """Blocks that show one section (a trace, a service, a network) are valid once put in a scenario."""
    from tests.helpers import tiny_scenario

    fragment = load_yaml(text)
    assert isinstance(fragment, dict) and fragment, name
    assert schema_errors(merged(tiny_scenario(), fragment)) == []


def test_doc_fragments_are_found_and_a_bad_one_fails() -> None:
    names = {name.split("#")[0] for name, _ in doc_fragments()}
    assert {"README.md", "inference.md", "network.md", "calibration.md"} <= names
    bad = merged(tiny_scenario_for_test(), {"network": {"topology": "fat_tree", "hosts_per_leaf": "eight"}})
    assert schema_errors(bad)


def tiny_scenario_for_test() -> dict[str, Any]:
    from tests.helpers import tiny_scenario

    return tiny_scenario()
