"""Scenario loading: schema errors name file, dotted path, expected and actual value."""

from pathlib import Path

import pytest

from dcsim.errors import ScenarioError
from dcsim.scenario import apply_overrides, load_scenario, scenario_from_dict
from tests.helpers import scenario_problems as problems_of
from tests.helpers import tiny_scenario
from tests.helpers import write_yaml as write


def test_valid_scenario_loads_with_si_units(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, tiny_scenario()))
    training = scenario.workload.training
    assert training is not None and training.startup == 60.0
    assert scenario.cluster.node_pools[0].host_power.idle == 500.0
    assert scenario.cluster.node_pools[1].host_power.busy_w == 200.0  # busy defaults to idle
    assert scenario.policies.scheduler.name == "fifo"
    assert scenario.base_dir == str(tmp_path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = tiny_scenario()
    data["cluster"]["node_pools"][0]["count"] = 0
    data["cluster"]["node_pools"][1]["accelerator"] = "TPU-v9"
    data["workload"]["training"]["jobs"] = -1
    data["workload"]["training"]["colour"] = "blue"
    path = write(tmp_path, data)
    problems = problems_of(path)
    assert f"{path}: cluster.node_pools.0.count: Input should be greater than or equal to 1, got 0" in problems
    unknown = f"{path}: cluster.node_pools.1.accelerator: unknown accelerator 'TPU-v9'"
    assert any(p.startswith(unknown) for p in problems)
    assert any(p.startswith(f"{path}: workload.training.jobs:") and "got -1" in p for p in problems)
    hint = "unknown field (check spelling; `dcsim schema` lists the fields)"
    assert f"{path}: workload.training.colour: {hint}" in problems
    assert len(problems) == 4


def test_missing_field_is_named(tmp_path: Path) -> None:
    data = tiny_scenario()
    del data["cluster"]
    assert problems_of(write(tmp_path, data)) == [f"{tmp_path / 's.yaml'}: cluster: required field is missing"]


def test_unit_error_names_the_field(tmp_path: Path) -> None:
    data = tiny_scenario()
    data["workload"]["training"]["startup"] = "soon"
    (problem,) = problems_of(write(tmp_path, data))
    assert problem.startswith(f"{tmp_path / 's.yaml'}: workload.training.startup: expected a duration")
    assert "got 'soon'" in problem


def test_unknown_model_type_suggests_close_match(tmp_path: Path) -> None:
    data = tiny_scenario()
    data["workload"]["training"]["models"] = {"ResNet50": 1}
    (problem,) = problems_of(write(tmp_path, data))
    assert "workload.training.models.ResNet50: no training calibration for model 'ResNet50'; did you mean ResNet-50" \
        in problem


def test_constraint_to_accelerator_not_in_cluster(tmp_path: Path) -> None:
    data = tiny_scenario()
    data["workload"]["training"]["constraint"] = {"fraction": 0.5, "accelerators": ["V100"]}
    (problem,) = problems_of(write(tmp_path, data))
    assert "constraint.accelerators.0: 'V100' is not in the cluster (node pools have H100-SXM, TPU-v4)" in problem


def test_gang_sizes_must_be_powers_of_two(tmp_path: Path) -> None:
    data = tiny_scenario()
    data["workload"]["training"]["accelerators"] = {"values": [1, 3]}
    (problem,) = problems_of(write(tmp_path, data))
    assert problem.endswith(
        "workload.training.accelerators.values: each value must be a power of two from 1 to 1048576, got 3")


def test_duplicate_pool_names(tmp_path: Path) -> None:
    data = tiny_scenario()
    data["cluster"]["node_pools"][1]["name"] = "gpu"
    (problem,) = problems_of(write(tmp_path, data))
    assert "node pool names must be unique; 'gpu' appears twice" in problem


def test_file_errors(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "none.yaml") == [f"{tmp_path / 'none.yaml'}: file not found"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    (problem,) = problems_of(bad)
    assert problem.startswith(f"{bad}: line 2, column 1: invalid YAML")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    assert problems_of(listing) == [f"{listing}: expected a mapping at the top level, got list"]


def test_overrides_set_nested_fields_and_list_items(tmp_path: Path) -> None:
    path = write(tmp_path, tiny_scenario())
    scenario = load_scenario(path, ["cluster.node_pools.0.count=5", "workload.training.jobs=7",
                                    "policies.scheduler=easy_backfill", "horizon=2h"])
    assert scenario.cluster.node_pools[0].count == 5
    assert scenario.workload.training is not None and scenario.workload.training.jobs == 7  # type: ignore[union-attr]
    assert scenario.policies.scheduler.name == "easy_backfill"
    assert scenario.horizon == 7200.0


@pytest.mark.parametrize(("override", "fragment"), [
    ("nonsense", "expected dotted.key=value"),
    ("cluster.node_pools.9.count=1", "cluster.node_pools.9: expected an index below 2"),
    ("name.x=1", "name: cannot set a field inside a plain value"),
])
def test_bad_overrides(override: str, fragment: str) -> None:
    with pytest.raises(ScenarioError, match=fragment):
        apply_overrides(tiny_scenario(), [override])


def test_policy_shorthand_and_params() -> None:
    data = tiny_scenario(policies={"scheduler": {"name": "easy_backfill", "max_scan": 50}, "placement": "spread"})
    scenario = scenario_from_dict(data)
    assert scenario.policies.scheduler.params == {"max_scan": 50}
    assert scenario.policies.placement.name == "spread"


def test_scenario_is_frozen() -> None:
    scenario = scenario_from_dict(tiny_scenario())
    with pytest.raises(Exception, match="frozen"):
        scenario.seed = 4  # type: ignore[misc]
