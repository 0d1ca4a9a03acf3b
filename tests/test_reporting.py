"""Reporting on real runs: every chart is a real PNG and report.html is self-contained."""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dcsim
from dcsim.reporting import (
    chart_notes,
    write_comparison_charts,
    write_report,
    write_report_html,
    write_run_charts,
)
from dcsim.results import RunResult

ROOT = Path(__file__).parents[1]
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"
RUN_CHARTS = ["utilization.png", "queue.png", "wait_jct_cdf.png", "power.png"]


@pytest.fixture(scope="module")
def quickstart() -> RunResult:
    return dcsim.run(QUICKSTART, overrides=["reporting.gantt_max_jobs=1000"])


@pytest.fixture(scope="module")
def report(quickstart: RunResult, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_report(quickstart, tmp_path_factory.mktemp("report"))


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes().startswith(b"\x89PNG")


def test_report_has_every_chart_embedded(quickstart: RunResult, report: list[Path]) -> None:
    assert [p.name for p in report] == [*RUN_CHARTS, "gantt.png", "report.html"]
    charts = report[:-1]
    assert all(is_png(p) for p in charts)
    page = report[-1].read_text()
    assert f"<title>dcsim: {quickstart.summary['scenario']}</title>" in page
    assert page.count('src="data:image/png;base64,') == len(charts)
    assert 'src="http' not in page and "<link" not in page and "<script" not in page


def test_gantt_skipped_above_limit(tmp_path: Path) -> None:
    result = dcsim.run(QUICKSTART, overrides=["reporting.gantt_max_jobs=250"])
    paths = write_run_charts(result, tmp_path)
    assert [p.name for p in paths] == RUN_CHARTS
    assert not (tmp_path / "gantt.png").exists()
    started = int(np.isfinite(result.jobs["start_s"].to_numpy(dtype=float)).sum())
    assert started > 250
    assert chart_notes(result) == [f"Gantt chart left out: {started:,} started jobs > reporting.gantt_max_jobs=250."]


def test_no_notes_when_every_chart_is_drawn(quickstart: RunResult) -> None:
    assert chart_notes(quickstart) == []


def test_reloaded_result_draws_same_charts(quickstart: RunResult, report: list[Path], tmp_path: Path) -> None:
    reloaded = RunResult.load(quickstart.save(tmp_path / "run"))
    assert reloaded.summary["cluster"]["accelerators"] == quickstart.summary["cluster"]["accelerators"]
    paths = write_run_charts(reloaded, tmp_path)
    assert [p.name for p in paths] == [p.name for p in report if p.suffix == ".png"]
    assert all(is_png(p) for p in paths)


def test_empty_jobs_and_single_row_timeseries(quickstart: RunResult, tmp_path: Path) -> None:
    bare = RunResult(scenario={"name": "bare"}, seed=0, version="0",
                     summary={"scenario": "bare", "sim_time_s": 0.0},
                     jobs=quickstart.jobs.iloc[:0], timeseries=quickstart.timeseries.iloc[:1])
    paths = write_report(bare, tmp_path)
    assert [p.name for p in paths] == [*RUN_CHARTS, "report.html"]
    assert all(is_png(p) for p in paths[:-1])


def test_html_escapes_and_shows_skipped_rows(quickstart: RunResult, tmp_path: Path) -> None:
    summary = copy.deepcopy(quickstart.summary)
    summary["scenario"] = "<b>x</b>"
    summary["workload"]["skipped"] = {"bad <runtime>": 3}
    scenario = {**quickstart.scenario, "description": "a & b"}
    result = quickstart.replace(summary=summary, scenario=scenario)
    page = write_report_html(result, tmp_path, []).read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "a &amp; b" in page and "bad &lt;runtime&gt;" in page and "3 workload rows were skipped" in page


def test_comparison_charts(quickstart: RunResult, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    variants = (("fifo", 3), ("easy_backfill,placement=spread", 3), ("solo", 1))
    rows = [{"variant": v, "seed": s, "wait_mean_s": rng.uniform(1e3, 1e4), "busy_utilization": rng.uniform(),
             "facility_kwh": rng.uniform(100, 200), "slowdown_mean": np.nan if v == "solo" else 2.0}
            for v, seeds in variants for s in range(seeds)]
    jobs = {"fifo": quickstart.jobs, "easy_backfill,placement=spread": quickstart.jobs.iloc[:50],
            "solo": quickstart.jobs.iloc[:0]}
    paths = write_comparison_charts(pd.DataFrame(rows), jobs, tmp_path)
    assert [p.name for p in paths] == ["comparison_metrics.png", "comparison_wait_cdf.png"]
    assert all(is_png(p) for p in paths)


def test_docs_images_come_from_the_script(tmp_path: Path) -> None:
    """Every PNG the README and docs embed is one tools/make_docs_images.py makes, small and reproducible."""
    spec = importlib.util.spec_from_file_location("make_docs_images", ROOT / "tools" / "make_docs_images.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    embedded = {Path(link).name for page in pages for link in re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)",
                                                                        page.read_text())}
    assert embedded and embedded <= set(tool.IMAGES)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, again = tool.make(sorted(embedded), tmp_path / "a"), tool.make(sorted(embedded), tmp_path / "b")
    for path in first:
        data, committed = path.read_bytes(), (ROOT / "docs" / path.name).read_bytes()
        assert is_png(path) and len(data) < tool.MAX_BYTES
        assert data[16:24] == committed[16:24]  # the same width and height as the committed image
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]


def test_comparison_draws_names_literally_and_each_chart_on_its_own(quickstart: RunResult, tmp_path: Path) -> None:
    variants = [r"easy_backfill,placement=$pack_1$", r"fifo ^\alpha"]
    table = pd.DataFrame([{"variant": v, "seed": s, "wait_mean_s": 100.0 * (s + 1)} for v in variants for s in (0, 1)])
    jobs = {v: quickstart.jobs for v in variants}
    paths = write_comparison_charts(table, jobs, tmp_path)
    assert paths.failures == [] and [p.name for p in paths] == ["comparison_metrics.png", "comparison_wait_cdf.png"]
    (tmp_path / "broken").mkdir()
    broken = write_comparison_charts(table, {**jobs, variants[1]: quickstart.jobs.assign(wait_s="n/a")},
                                     tmp_path / "broken")
    assert [p.name for p in broken] == ["comparison_metrics.png"]
    assert broken.failures == ["comparison_wait_cdf.png: ValueError: could not convert string to float: 'n/a'"]
    assert not (tmp_path / "broken" / "comparison_wait_cdf.png").exists()
