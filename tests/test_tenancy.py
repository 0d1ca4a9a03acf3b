"""Tenants, priority classes, per-job checkpoint sizes and restart delays; the `priority` policy by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dcsim
from dcsim.errors import DcsimError, TraceError
from dcsim.scenario import scenario_from_dict
from tests.helpers import tiny_scenario

TENANCY = {"tenants": {"a": {"quota": 1}, "b": {"quota": 1}},
           "priorities": {"spot": {"level": 0}, "production": {"level": 10}}}


def run(tmp_path: Path, header: str, rows: list[str], *, per_node: int = 2, scheduler: str = "priority",
        tenancy: dict[str, Any] | None = None, suspension: dict[str, Any] | None = None) -> dcsim.RunResult:
    path = tmp_path / "jobs.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    columns = {c: c for c in ("tenant", "priority", "checkpoint_size", "restart_delay") if c in header.split(",")}
    training: dict[str, Any] = {"source": "trace", "path": str(path), "columns": columns,
                                "tenancy": TENANCY if tenancy is None else tenancy}
    if suspension is not None:
        training["suspension"] = suspension
    data = {"name": "ten", "cluster": {"node_pools": [{"name": "v", "count": 1, "accelerator": "V100",
                                                       "accelerators_per_node": per_node}]},
            "workload": {"training": training}, "policies": {"scheduler": scheduler, "placement": "pack"}}
    return dcsim.run(scenario_from_dict(data))


def segments(result: dcsim.RunResult) -> list[tuple[int, str, float, float]]:
    frame = result.job_segments
    assert frame is not None
    return [(int(r.job_id), str(r.phase), float(r.start_s), float(r.end_s)) for r in frame.itertuples()]


def test_tenant_under_quota_reclaims_from_tenant_over_quota(tmp_path: Path) -> None:
    # Two V100, quotas a: 1, b: 1. b's two jobs (100 s) start at 0 and 1: b borrows a's idle accelerator.
    # a's job arrives at 10: a is under quota, b's second job (beyond b's quota) is preempted after 9 s.
    # a runs 10-110; b's first ends at 100, when b's second resumes with 91 s left: 100-191.
    result = run(tmp_path, "submit,duration,accelerators,tenant",
                 ["0,100,1,b", "1,100,1,b", "10,100,1,a"])
    assert segments(result) == [(1, "computing", 1, 10), (0, "computing", 0, 100), (2, "computing", 10, 110),
                                (1, "computing", 100, 191)]
    training = result.summary["training"]
    assert set(training["tenants"]) == {"a", "b"}
    assert training["tenants"]["a"]["attained_accelerator_hours"] == pytest.approx(100 / 3600)
    assert training["tenants"]["b"]["share_of_attained"] == pytest.approx(200 / 300)
    # Over the 191 s run a computed 100 accelerator-seconds against a quota of 1: 100 / 191 of its quota.
    assert training["tenants"]["a"]["share_of_quota"] == pytest.approx(100 / 191)
    assert training["tenants"]["b"]["mean_accelerators"] == pytest.approx(200 / 191)


def test_higher_priority_class_preempts_lower(tmp_path: Path) -> None:
    # One V100: a spot job runs from 0; a production job arrives at 5 and preempts it (quotas do not
    # matter across classes); spot resumes at 25 with 95 s left.
    result = run(tmp_path, "submit,duration,accelerators,tenant,priority",
                 ["0,100,1,a,spot", "5,20,1,b,production"], per_node=1)
    assert segments(result) == [(0, "computing", 0, 5), (1, "computing", 5, 25), (0, "computing", 25, 120)]
    assert result.jobs["priority"].tolist() == [0, 10]
    assert result.jobs["tenant"].tolist() == ["a", "b"]


def test_equal_standing_does_not_preempt(tmp_path: Path) -> None:
    result = run(tmp_path, "submit,duration,accelerators,tenant", ["0,100,1,a", "5,20,1,a"], per_node=1,
                 tenancy={"tenants": {"a": {"quota": 1}}})
    assert result.jobs["preemptions"].tolist() == [0, 0]


def test_per_job_checkpoint_size_and_restart_delay_from_the_trace(tmp_path: Path) -> None:
    # The spot job saves 4 GB at 1 GB/s (5-9) and restores for 2 s + 4 GB at 1 GB/s = 6 s.
    result = run(tmp_path, "submit,duration,accelerators,priority,checkpoint_size,restart_delay",
                 ["0,100,1,spot,4GB,2s", "5,20,1,production,,"], per_node=1,
                 suspension={"checkpoint_size": "100GB", "write_bandwidth": "1GB/s", "read_bandwidth": "1GB/s"})
    assert segments(result) == [(0, "computing", 0, 5), (0, "suspending", 5, 9), (1, "computing", 9, 29),
                                (0, "restoring", 29, 35), (0, "computing", 35, 130)]


@pytest.mark.parametrize(("row", "message"), [
    ("0,10,1,c,spot", r"jobs.csv: line 2: column 'tenant': unknown tenant 'c' \(declared under "
                      r"tenancy.tenants: a, b\)"),
    ("0,10,1,a,urgent", r"line 2: column 'priority': unknown priority class 'urgent' \(declared under "
                        r"tenancy.priorities: spot, production\)"),
])
def test_unknown_tenant_or_class_is_an_error_naming_file_line_and_column(tmp_path: Path, row: str,
                                                                         message: str) -> None:
    with pytest.raises(TraceError, match=message):
        run(tmp_path, "submit,duration,accelerators,tenant,priority", [row])


def test_negative_checkpoint_size_in_trace_or_scenario_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"line 2: column 'checkpoint_size': must be >= 0, got '-1'"):
        run(tmp_path, "submit,duration,accelerators,checkpoint_size", ["0,10,1,-1"])
    with pytest.raises(DcsimError, match="checkpoint_size"):
        run(tmp_path, "submit,duration,accelerators", ["0,10,1"], suspension={"checkpoint_size": -5})


def test_synthetic_jobs_draw_tenants_and_classes_by_weight_without_changing_other_draws() -> None:
    plain = dcsim.run(scenario_from_dict(tiny_scenario()))
    data = tiny_scenario()
    data["workload"]["training"]["tenancy"] = {"tenants": {"a": {"weight": 3}, "b": {"weight": 1}},
                                               "priorities": {"low": {"level": 0}, "high": {"level": 1}}}
    tenanted = dcsim.run(scenario_from_dict(data))
    for column in ("submit_s", "work_ref_s", "accelerators", "model", "end_s"):  # fifo ignores tenants
        assert plain.jobs[column].equals(tenanted.jobs[column])
    counts = tenanted.jobs["tenant"].value_counts()
    assert set(counts.index) == {"a", "b"} and counts["a"] > counts["b"]
    assert set(tenanted.jobs["priority"]) == {0, 1}


def test_round_of_zero_where_needed_and_bad_tiresias_thresholds_name_the_policy() -> None:
    data = tiny_scenario(policies={"scheduler": {"name": "tiresias", "params": {"queues": 3, "thresholds": [10.0]}},
                                   "placement": "pack"})
    with pytest.raises(DcsimError, match=r"policies.scheduler: scheduler policy 'tiresias': thresholds must have"):
        dcsim.run(scenario_from_dict(data))
    data["policies"]["scheduler"] = {"name": "las", "params": {"round": -1.0}}
    with pytest.raises(DcsimError, match=r"scheduler policy 'las': round must be a finite number of seconds >= 0"):
        dcsim.run(scenario_from_dict(data))


def test_tenant_share_chart_follows_the_hand_timeline(tmp_path: Path) -> None:
    """The reclaim timeline above, as levels: b holds 1 then 2 (1-10), 1 (10-100, a holds 1), then 1 to 191."""
    from dcsim.reporting import write_report
    from dcsim.reporting.tenant_charts import tenant_levels

    result = run(tmp_path, "submit,duration,accelerators,tenant", ["0,100,1,b", "1,100,1,b", "10,100,1,a"])
    assert result.job_segments is not None
    times, levels = tenant_levels(result.jobs, result.job_segments)
    assert times.tolist() == [0, 1, 10, 100, 110, 191]
    assert levels["a"].tolist() == [0, 0, 1, 1, 0, 0]
    assert levels["b"].tolist() == [1, 2, 1, 1, 1, 0]
    (tmp_path / "out").mkdir()
    files = write_report(result, tmp_path / "out")
    assert files.failures == [] and (tmp_path / "out" / "tenant_share.png").is_file()
    no_tenants = run(tmp_path, "submit,duration,accelerators", ["0,100,1"])
    (tmp_path / "bare").mkdir()
    assert not (tmp_path / "bare" / "tenant_share.png").exists() and write_report(no_tenants, tmp_path / "bare")
    assert not (tmp_path / "bare" / "tenant_share.png").exists()


def test_validate_names_a_missing_tenancy_column(tmp_path: Path) -> None:
    """The column check every trace column goes through also covers the lifecycle columns."""
    from dcsim.scenario import scenario_from_dict as load
    from dcsim.workload.trace import check_trace_header

    path = tmp_path / "jobs.csv"
    path.write_text("submit,duration,accelerators\n0,10,1\n")
    data = tiny_scenario()
    data["workload"]["training"] = {"source": "trace", "path": str(path), "columns": {"tenant": "vc"},
                                    "tenancy": TENANCY}
    scenario = load(data)
    problems = check_trace_header(scenario.workload.training, scenario.base_dir)  # type: ignore[arg-type]
    assert len(problems) == 1 and "missing column 'vc' for tenant" in problems[0]
    assert "set workload.training.columns.tenant" in problems[0]
