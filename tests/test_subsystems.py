"""The subsystem seams: runner.py, report.html and write_report iterate lists and name no subsystem.

A new subsystem plugged in through SUBSYSTEMS (run side) and SECTIONS (report side) alone must reach
summary.json at its declared place, be saved and reloaded with its frame, and appear in the report.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest
import yaml

import dcsim
from dcsim import subsystems
from dcsim.reporting import sections, write_report
from dcsim.results import RunResult
from dcsim.scenario import scenario_from_dict
from tests.helpers import tiny_scenario

PACKAGE = Path(dcsim.__file__).parent
SUBSYSTEM_WORDS = {"training", "inference", "network", "storage", "requests", "replicas", "links", "serving",
                   "jobs_after_horizon", "link_timeseries", "storage_timeseries"}


def _code_words(path: Path) -> set[str]:
    """Names, attributes and string constants in a module's code, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    words: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.add(node.value)
        elif isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
    return words


@pytest.mark.parametrize("module", ["runner.py", "reporting/html.py", "reporting/__init__.py"])
def test_iterating_modules_name_no_subsystem(module: str) -> None:
    named = _code_words(PACKAGE / module) & SUBSYSTEM_WORDS
    assert not named, f"{module} names {sorted(named)}"


def _tally(run: subsystems.RunFrames) -> subsystems.Contribution:
    frame = pd.DataFrame({"job": run.jobs["job_id"], "doubled_gpus": 2 * run.jobs["accelerators"]})
    return subsystems.Contribution(frames={"tally": frame},
                                   sections={"tally": {"rows": len(frame), "gpus": int(frame["doubled_gpus"].sum())}})


def _tally_tables(summary: dict) -> str:
    return f"<h2>Tally</h2><p>{summary['tally']['rows']} rows</p>"


def test_a_new_subsystem_needs_only_its_list_entries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tally = subsystems.Subsystem("tally", ("utilization",), _tally)
    monkeypatch.setattr(subsystems, "SUBSYSTEMS", (*subsystems.SUBSYSTEMS, tally))
    monkeypatch.setattr("dcsim.runner.SUBSYSTEMS", (*subsystems.SUBSYSTEMS,))
    monkeypatch.setattr(sections, "SECTIONS", (*sections.SECTIONS, sections.ReportSection("tally", ("tally",),
                                                                                         _tally_tables)))
    scenario = scenario_from_dict(tiny_scenario(), "tiny.yaml", base_dir=str(tmp_path))
    result = dcsim.run(scenario)
    keys = list(result.summary)
    assert keys.index("tally") == keys.index("utilization") + 1  # placed where it said
    assert result.summary["tally"]["rows"] == len(result.jobs) == 60
    assert result.summary["tally"]["gpus"] == 2 * int(result.jobs["accelerators"].sum())
    result.save(tmp_path / "out", extra_files=lambda folder: write_report(result, folder))
    again = RunResult.load(tmp_path / "out")
    pd.testing.assert_frame_equal(again.tally, result.tally)
    assert (tmp_path / "out" / "tally.csv").is_file()
    assert "<h2>Tally</h2><p>60 rows</p>" in (tmp_path / "out" / "report.html").read_text()


def test_report_lists_only_the_policies_that_applied(tmp_path: Path) -> None:
    training_only = dcsim.run(scenario_from_dict(tiny_scenario(), "tiny.yaml", base_dir=str(tmp_path)))
    page = write_report(training_only, tmp_path)[-1].read_text()
    assert "<td>scheduler</td>" in page and "<td>placement</td>" in page
    assert "<td>balancer</td>" not in page and "<td>autoscaler</td>" not in page


def test_absent_frame_reads_as_none_and_private_names_raise() -> None:
    result = RunResult(scenario={}, seed=0, version="0", summary={}, jobs=pd.DataFrame(), timeseries=pd.DataFrame())
    assert result.requests is None
    with pytest.raises(AttributeError):
        _ = result._private


def _broken_chart(path: Path) -> Path:
    raise RuntimeError("this chart cannot be drawn")


def test_cli_run_keeps_results_and_warns_when_a_chart_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from dcsim import cli

    broken = sections.ReportSection("broken", (), lambda summary: "", lambda result: [("broken.png", _broken_chart)])
    monkeypatch.setattr(sections, "SECTIONS", (*sections.SECTIONS, broken))
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(tiny_scenario()))
    monkeypatch.setattr("sys.argv", ["dcsim", "run", str(scenario), "-o", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 0  # the run succeeded
    err = capsys.readouterr().err
    assert "warning: chart not drawn: broken.png: RuntimeError: this chart cannot be drawn" in err
    assert (tmp_path / "out" / "summary.json").is_file() and (tmp_path / "out" / "jobs.csv").is_file()
    assert (tmp_path / "out" / "utilization.png").is_file() and not (tmp_path / "out" / "broken.png").exists()
    assert "could not be drawn" in (tmp_path / "out" / "report.html").read_text()
