"""Trace replay: column mapping, row accounting with line numbers, Philly through the generic reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dcsim
from dcsim.errors import TraceError
from dcsim.scenario import scenario_from_dict
from tests.helpers import PHILLY


def trace_scenario(path: Path, **training: Any) -> dict[str, Any]:
    return {
        "name": "trace", "seed": 5,
        "cluster": {"node_pools": [{"name": "g", "count": 4, "accelerator": "V100", "accelerators_per_node": 8}]},
        "workload": {"training": {"source": "trace", "path": str(path), **training}},
    }


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jobs.csv"
    path.write_text(text)
    return path


def test_column_mapping_and_bad_rows_are_counted_with_line_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path, (
        "when,secs,gpus,arch,kind\n"
        "0,100,1,V100,LM\n"          # line 2: ok
        "10,abc,1,V100,LM\n"         # line 3: bad duration
        "20,50,0,V100,LM\n"          # line 4: bad gang size
        "later,50,2,V100,LM\n"       # line 5: bad submit time
        "30,50,2,Z900,LM\n"          # line 6: unknown accelerator
        "40,50,2,,Alien\n"           # line 7: unknown model
        "\n"                         # line 8: blank
        "50,70,4,,ResNet-50\n"       # line 9: ok
    ))
    columns = {"submit": "when", "duration": "secs", "accelerators": "gpus", "accelerator_type": "arch",
               "model": "kind"}
    result = dcsim.run(scenario_from_dict(trace_scenario(path, columns=columns)))
    workload = result.summary["workload"]
    assert workload["rows_read"] == 8
    assert workload["jobs"] == 2
    assert workload["skipped"] == {
        "arch: unknown accelerator": 1, "blank line": 1, "gpus: not a whole number from 1 to 1048576": 1,
        "kind: unknown model type": 1, "secs: not a positive duration": 1, "when: not a time": 1,
    }
    assert workload["skipped_example_lines"]["secs: not a positive duration"] == [3]
    assert workload["skipped_example_lines"]["when: not a time"] == [5]
    assert workload["skipped_example_lines"]["arch: unknown accelerator"] == [6]
    assert workload["rows_read"] == workload["jobs"] + sum(workload["skipped"].values())
    assert result.jobs["name"].tolist() == ["line-2", "line-9"]
    assert result.jobs["model"].tolist() == ["LM", "ResNet-50"]


def test_time_scale_and_limit(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "submit,duration,accelerators\n100,10,1\n300,10,1\n200,10,1\n")
    result = dcsim.run(scenario_from_dict(trace_scenario(path, time_scale=0.5, limit=2)))
    assert result.jobs["submit_s"].tolist() == [0.0, 50.0]
    assert result.summary["workload"]["skipped"] == {"beyond limit": 1}


def test_datetime_submit_times(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "submit,duration,accelerators\n2017-10-01 00:00:10,5,1\n2017-10-01 00:01:10,5,1\n")
    result = dcsim.run(scenario_from_dict(trace_scenario(path)))
    assert result.jobs["submit_s"].tolist() == [0.0, 60.0]


def test_missing_column_names_the_file_column_and_setting(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "submit,duration\n1,2\n")
    with pytest.raises(TraceError) as info:
        dcsim.run(scenario_from_dict(trace_scenario(path)))
    assert str(info.value) == (f"{path}: missing column 'accelerators' for accelerators (columns present: submit, "
                               "duration); set workload.training.columns.accelerators")


def test_no_usable_rows_is_an_error_with_counts(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "submit,duration,accelerators\nx,1,1\n")
    message = r"no usable job rows \(1 rows read; skipped: 1 submit: not a time \(e.g. line 2\)\)"
    with pytest.raises(TraceError, match=message):
        dcsim.run(scenario_from_dict(trace_scenario(path)))


def test_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="trace file not found"):
        dcsim.run(scenario_from_dict(trace_scenario(tmp_path / "nope.csv")))


@pytest.mark.skipif(not PHILLY.exists(), reason=f"Philly trace not found at {PHILLY}")
def test_full_philly_trace_replays_through_the_generic_reader() -> None:
    columns = {"submit": "timestamp", "duration": "duration", "accelerators": "num_gpus"}
    data = trace_scenario(PHILLY, columns=columns, reference_accelerator="P100")
    data["cluster"]["node_pools"][0].update(count=400, accelerator="P100")
    data["policies"] = {"scheduler": "fifo"}
    result = dcsim.run(scenario_from_dict(data))
    workload = result.summary["workload"]
    assert workload["rows_read"] == 82248  # 82,247 jobs plus the file's trailing blank line
    assert workload["jobs"] == 82247
    assert workload["skipped"] == {"blank line": 1}
    training = result.summary["training"]
    assert training["jobs_completed"] + training["jobs_rejected"] == 82247
    assert training["jobs_rejected"] == 0  # the largest Philly job asks for 128 GPUs


def test_time_zones_and_numbers_in_a_date_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "submit,duration,accelerators\n2017-10-03T10:00:00+01:00,5,1\n"
                               "2017-10-03T09:30:00Z,5,1\n1000,5,1\n")
    result = dcsim.run(scenario_from_dict(trace_scenario(path)))
    assert result.jobs["submit_s"].tolist() == [0.0, 1800.0]  # 09:00Z and 09:30Z
    assert result.summary["workload"]["skipped"] == {"submit: not a time": 1}
    assert result.summary["workload"]["skipped_example_lines"]["submit: not a time"] == [4]


def test_trailing_commas_and_infinite_values(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "submit,duration,accelerators\n0,60,1,\ninf,60,1,\n10,inf,1,\n")
    result = dcsim.run(scenario_from_dict(trace_scenario(path)))
    assert result.summary["workload"]["jobs"] == 1
    assert result.summary["workload"]["skipped"] == {"duration: not a positive duration": 1, "submit: not a time": 1}


def test_trace_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read trace file"):
        dcsim.run(scenario_from_dict(trace_scenario(tmp_path)))


@pytest.mark.skipif(not PHILLY.exists(), reason=f"Philly trace not found at {PHILLY}")
def test_philly_preset_keeps_its_columns_when_one_is_added() -> None:
    data = trace_scenario(PHILLY, format="philly", columns={"name": "cluster"}, limit=5)
    result = dcsim.run(scenario_from_dict(data))
    assert result.summary["workload"]["jobs"] == 5
    names = result.jobs["name"].tolist()
    assert all(len(name) == 6 and int(name, 16) >= 0 for name in names), names  # Philly's hashed cluster ids


def test_several_accelerator_types_in_one_cell(tmp_path: Path) -> None:
    """`V100|T4` lets a job run on either; the scheduler picks the fastest with room (here T4: no V100)."""
    path = write_csv(tmp_path, "submit,duration,accelerators,types\n0,100,1,V100|T4\n0,100,1,T4 | t4\n"
                               "0,100,1,V100|Z900\n")
    data = trace_scenario(path, columns={"accelerator_type": "types"})
    data["cluster"]["node_pools"] = [{"name": "t4", "count": 1, "accelerator": "T4", "accelerators_per_node": 4}]
    result = dcsim.run(scenario_from_dict(data))
    assert result.summary["workload"]["skipped"] == {"types: unknown accelerator": 1}  # line 4: Z900
    assert result.jobs["accelerator_model"].tolist() == ["T4", "T4"]
    assert result.jobs["state"].tolist() == ["completed", "completed"]


def test_time_unit_and_unit_strings_in_cells(tmp_path: Path) -> None:
    """Plain numbers are in `time_unit`; cells with their own unit keep it."""
    path = write_csv(tmp_path, "submit,duration,accelerators\n0,2,1\n1,90s,1\n2,0.5h,1\n3,soon,1\n")
    result = dcsim.run(scenario_from_dict(trace_scenario(path, time_unit="min")))
    jobs = result.jobs.sort_values("submit_s")
    assert jobs["submit_s"].tolist() == [0.0, 60.0, 120.0]
    assert jobs["work_ref_s"].tolist() == [120.0, 90.0, 1800.0]
    assert result.summary["workload"]["skipped"] == {"duration: not a positive duration": 1}


def test_start_and_end_columns_give_the_run_time(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "queued,began,ended,gpus\n"
                               "2024-01-01T00:00:00Z,2024-01-01T00:10:00Z,2024-01-01T01:10:00Z,1\n"
                               "2024-01-01T00:05:00Z,2024-01-01T00:20:00Z,2024-01-01T00:20:00Z,1\n"
                               "2024-01-01T00:06:00Z,2024-01-01T00:30:00Z,2024-01-01T00:50:00Z,1\n")
    columns = {"submit": "queued", "start": "began", "end": "ended", "accelerators": "gpus"}
    result = dcsim.run(scenario_from_dict(trace_scenario(path, columns=columns)))
    assert result.jobs["work_ref_s"].tolist() == [3600.0, 1200.0]  # the trace's own waits are not work
    assert result.jobs["submit_s"].tolist() == [0.0, 360.0]
    assert result.summary["workload"]["skipped"] == {"ended - began: not a positive duration": 1}


def test_start_without_end_is_a_scenario_error(tmp_path: Path) -> None:
    from dcsim.errors import ScenarioError

    path = write_csv(tmp_path, "submit,begin,accelerators\n0,0,1\n")
    with pytest.raises(ScenarioError, match="columns: give both start and end columns"):
        scenario_from_dict(trace_scenario(path, columns={"start": "begin"}))
