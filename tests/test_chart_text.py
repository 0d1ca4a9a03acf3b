"""User text on charts is drawn literally, and one broken chart never costs the rest of a run's output.

Names come from scenario files: matplotlib reads `$...$` as math, so a service called `prod-$US_$EU`
used to fail the whole report after the simulation had run. These tests use real runs and real files.
"""

from __future__ import annotations

import itertools
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

import dcsim
from dcsim.reporting import ReportFiles, chart_notes, write_report
from dcsim.reporting.charts import cdf_plot
from dcsim.reporting.drawing import literal_text, save
from dcsim.reporting.inference_charts import replica_label
from dcsim.results import RunResult
from dcsim.scenario import scenario_from_dict
from tests.helpers import tiny_scenario

SERVICE = r"prod-$US_$EU ^x\alpha"
POOL = r"gpu-$pool_^\\"
TIER = r"pfs-$t_1$"
CHARTS = ["utilization.png", "queue.png", "wait_jct_cdf.png", "power.png", "gantt.png", "latency_cdf.png",
          "latency_over_time.png", "replica_batch_kv.png", "slo_attainment.png", "link_utilization.png",
          "storage.png"]


def hostile_scenario() -> dict[str, Any]:
    """Training and inference on a pool, a service and a storage tier whose names are not math."""
    data = tiny_scenario(name=r"scen-$a_b$")
    data["cluster"]["node_pools"][0]["name"] = POOL
    training = data["workload"]["training"]
    training.update(jobs=20, models={"Llama-2-7B": 1, "ResNet-50": 1},
                    communication={"algorithm": "ring", "parameters": 25e6}, dataset={"tier": TIER, "rate": "50MB/s"})
    data["workload"]["inference"] = {"services": [{
        "name": SERVICE, "model": "Llama-2-7B", "slo": {"ttft": "500ms", "tpot": "50ms"},
        "replicas": [{"accelerator": "H100", "tensor_parallel": 2, "count": 2}],
        "requests": {"source": "synthetic", "count": 300, "arrival": {"process": "poisson", "rate": "1/s"},
                     "prompt_tokens": {"distribution": "constant", "value": 500},
                     "output_tokens": {"distribution": "constant", "value": 50}}}]}
    data["network"] = {"topology": "leaf_spine", "host_bandwidth": "100Gbps", "hosts_per_leaf": 2, "spines": 2}
    data["storage"] = {"tiers": [{"name": TIER, "kind": "parallel_fs", "capacity": "1PB", "used": "100TB",
                                  "read_bandwidth": "10GB/s", "write_bandwidth": "5GB/s"}]}
    return data


@pytest.fixture(scope="module")
def hostile() -> RunResult:
    return dcsim.run(scenario_from_dict(hostile_scenario(), "hostile.yaml"))


def test_hostile_names_are_drawn_without_error(hostile: RunResult, tmp_path: Path) -> None:
    assert hostile.replicas is not None and set(hostile.replicas["service"]) == {SERVICE}
    report = write_report(hostile, tmp_path)
    assert report.failures == []
    assert [p.name for p in report] == [*CHARTS, "report.html"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in report[:-1])


def test_inference_only_run_has_no_training_charts(tmp_path: Path) -> None:
    data = hostile_scenario()
    del data["workload"]["training"], data["network"], data["storage"]
    result = dcsim.run(scenario_from_dict(data, "serve.yaml"))
    assert result.jobs.empty and result.requests is not None
    report = write_report(result, tmp_path)
    assert [p.name for p in report] == ["utilization.png", "power.png", *CHARTS[5:9], "report.html"]
    assert report.failures == []
    assert chart_notes(result) == ["Queue, wait/JCT CDF and Gantt charts left out: the run had no training jobs."]


def test_replica_legend_names_service_and_accelerators(hostile: RunResult) -> None:
    assert hostile.replicas is not None
    row = hostile.replicas.iloc[0]
    accelerator = row["accelerator"]
    assert accelerator.startswith("H100")  # the catalog's name, such as H100-SXM
    assert replica_label(int(row["replica_id"]), row) == f"{SERVICE}/{int(row['replica_id'])} ({accelerator} x2)"
    assert replica_label(7, row.drop(["accelerator", "tensor_parallel"])) == f"{SERVICE}/7"


def test_log_tick_labels_are_plain_text(tmp_path: Path) -> None:
    """With math text off, matplotlib's default log labels ($10^{2}$) would show raw: save() swaps them."""
    with literal_text():
        fig = Figure()
        ax = fig.subplots()
        cdf_plot(ax, {SERVICE: np.geomspace(0.001, 50, 200)}, "latency", ["tab:blue"])
        save(fig, tmp_path / "cdf.png")
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and not any("$" in text or "mathdefault" in text for text in labels)
    assert ax.get_legend().get_texts()[0].get_text().startswith(SERVICE)


def test_layout_measures_the_plain_log_labels(tmp_path: Path) -> None:
    """Laid out around the wide math-text labels, a log y axis got a fifth of the width as margin."""
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots()
    ax.plot([1, 2, 3], [0.1, 1, 2])
    ax.set_yscale("log")
    ax.set_ylabel("latency (s)")
    save(fig, tmp_path / "log.png")
    assert ax.get_position().x0 < 0.12


def test_broken_chart_is_reported_and_the_rest_written(hostile: RunResult, tmp_path: Path) -> None:
    """A timeseries without the facility power column fails power.png only; results and page survive."""
    broken = hostile.replace(timeseries=hostile.timeseries.drop(columns=["power_facility_w"]))
    reports: list[ReportFiles] = []
    folder = broken.save(tmp_path / "run", extra_files=lambda tmp: reports.append(write_report(broken, tmp)))
    assert (folder / "summary.json").is_file() and (folder / "frames" / "jobs.parquet").is_file()
    assert reports[0].failures == ["power.png: KeyError: \"['power_facility_w'] not in index\""]
    assert [p.name for p in reports[0]] == [*(c for c in CHARTS if c != "power.png"), "report.html"]
    assert not (folder / "power.png").exists()
    page = (folder / "report.html").read_text()
    assert "1 chart could not be drawn" in page and "power.png: KeyError" in page
    assert page.count('src="data:image/png;base64,') == len(CHARTS) - 1


def test_every_failure_is_listed(hostile: RunResult, tmp_path: Path) -> None:
    bare = RunResult(scenario={"name": "bare"}, seed=0, version="0", summary={"scenario": "bare"},
                     jobs=hostile.jobs.iloc[:0], timeseries=hostile.timeseries.drop(columns=["time_s"]))
    report = write_report(bare, tmp_path)
    assert [line.split(":")[0] for line in report.failures] == ["utilization.png", "queue.png", "power.png"]
    assert [p.name for p in report] == ["wait_jct_cdf.png", "report.html"]
    assert "3 charts could not be drawn" in report[-1].read_text()


def overlapping_tick_labels(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of drawn tick labels (major and minor) whose boxes overlap, per axis of `fig`."""
    FigureCanvasAgg(fig).draw()
    pairs = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis, coordinate in ((ax.xaxis, 0), (ax.yaxis, 1)):
            low, high = sorted(axis.get_view_interval())
            shown: list[Text] = [t for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()
                                 and low <= t.get_position()[coordinate] <= high]
            boxes = [(t.get_text(), t.get_window_extent()) for t in shown]
            pairs += [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]
    return pairs


def test_calibration_panels_have_units_and_readable_ticks() -> None:
    from dcsim.calibration import load_calibration
    from dcsim.calibration.listing import predictions
    from dcsim.calibration.table import read_measurements
    from dcsim.reporting.calibration import calibration_chart

    with resources.as_file(resources.files("dcsim.catalog").joinpath("measurements.csv")) as path:
        table = predictions(load_calibration(), read_measurements(path))
    fig = calibration_chart(table)
    assert overlapping_tick_labels(fig) == []
    labels = {ax.get_title(loc="left").split("\n")[0]: (ax.get_xlabel(), ax.get_ylabel())
              for ax in fig.axes if ax.get_visible()}
    assert labels["training cnn"] == ("measured step time (s)", "predicted step time (s)")
    assert labels["power serving"] == ("measured power per GPU (W)", "predicted power per GPU (W)")
    assert labels["power cap time"][0] == "measured time multiplier (x uncapped)"
    assert all("(" in x and "(" in y for x, y in labels.values())
