"""Accelerators defined by the user (issue 15): in a scenario or an overlay file, strictly validated,
extrapolated by the fitted models, run end to end for training and serving."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import dcsim
from dcsim.calibration import load_calibration
from dcsim.errors import ScenarioError
from dcsim.scenario import scenario_from_dict
from dcsim.scenario.accelerators import scenario_accelerators, scenario_calibration, scenario_catalog
from tests.helpers import ROOT

# A made-up part: H200-like memory system, half again the H100's compute.
X1: dict[str, Any] = {
    "kind": "gpu", "vendor": "Example", "source": "example datasheet, rev 1",
    "memory": "144GB", "memory_bandwidth": "5TB/s",
    "peak_flops": {"bf16": "1500TFLOPS", "fp8": "3000TFLOPS", "fp32": "80TFLOPS"},
    "tdp": "900W", "interconnect_bandwidth": "900GB/s", "network_bandwidth": "400Gbps", "like": "H100",
}


def scenario_data(accelerator: str = "X1", definitions: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "user-hardware", "seed": 3, "horizon": "2h",
        "accelerators": {"X1": copy.deepcopy(X1)} if definitions is None else definitions,
        "cluster": {"node_pools": [{"name": "x", "count": 2, "accelerator": accelerator, "accelerators_per_node": 8}]},
        "workload": {
            "training": {"source": "synthetic", "jobs": 12, "arrival": {"rate": "30/h"},
                         "accelerators": {"values": [1, 4, 8]},
                         "duration": {"distribution": "constant", "value": "10min"},
                         "models": {"ResNet-50": 1, "Llama-2-7B": 1}},
            "inference": {"services": [{
                "name": "chat", "model": "Llama-2-7B",
                "replicas": [{"accelerator": accelerator, "tensor_parallel": 1, "count": 1}],
                "requests": {"source": "synthetic", "count": 200, "arrival": {"rate": "2/s"},
                             "prompt_tokens": {"distribution": "constant", "value": 500},
                             "output_tokens": {"distribution": "constant", "value": 100}}}]},
        },
    }
    data.update(changes)
    return data


def test_scenario_defined_accelerator_runs_training_and_serving_end_to_end() -> None:
    scenario = scenario_from_dict(scenario_data())
    result = dcsim.run(scenario)
    summary = result.summary
    assert summary["training"]["jobs_completed"] == 12
    assert summary["inference"]["completed"] == 200
    assert set(summary["utilization"]["allocated"]) == {"all", "X1"}
    calibration = scenario_calibration(scenario)
    assert calibration.speed_basis("X1") == "extrapolated (like H100-SXM)"
    assert calibration.speed_basis("H100") == "measured"
    assert summary["hardware"] == {"extrapolated": {"X1": {"speeds": "extrapolated (like H100-SXM)",
                                                           "defined_in": "<scenario>"}}}
    from dcsim.reporting.sections import present_sections

    section = next(s for s in present_sections(result) if s.name == "hardware")
    html = section.html(result)
    assert "Extrapolated hardware" in html and "extrapolated (like H100-SXM)" in html


def test_speeds_come_from_the_fitted_models_of_the_named_relative() -> None:
    scenario = scenario_from_dict(scenario_data())
    calibration = scenario_calibration(scenario)
    catalog = scenario_catalog(scenario)
    spec = catalog.accelerator("X1")
    assert spec.user_defined and spec.like == "H100-SXM"
    h100 = catalog.accelerator("H100")
    # Gavel networks: the H100's nearest anchor, scaled by bandwidth ratio ** alpha; X1 has more bandwidth.
    for model in ("ResNet-50", "BERT"):
        assert calibration.relative_speed(model, "X1") >= calibration.relative_speed(model, "H100")
    # LLM training: the H100's fitted MFU on X1's own peak.
    assert calibration.training.llm_mfu("X1") == calibration.training.llm_mfu("H100-SXM")
    ratio = calibration.relative_speed("Llama-2-7B", "X1") / calibration.relative_speed("Llama-2-7B", "H100")
    assert ratio == pytest.approx(spec.peak_fp16_flops.value / h100.peak_fp16_flops.value, rel=1e-9)
    # Inference: the H100's fitted coefficients on X1's datasheet figures, so decode of a 7B model is
    # faster by at most the bandwidth ratio (the memory term) and no faster than X1's roofline.
    model = catalog.model("Llama-2-7B")
    x1 = calibration.inference.decode_time(model, "X1", 1, 512)
    h = calibration.inference.decode_time(model, "H100", 1, 512)
    assert h / x1 <= 5e12 / 3.35e12 + 1e-9
    assert x1 > 0


def test_overlay_file_defines_parts_and_listing_marks_them_extrapolated(tmp_path: Path) -> None:
    parts = tmp_path / "parts.yaml"
    parts.write_text(yaml.safe_dump({"format": "dcsim-catalog/1", "accelerators": {"X1": X1}}))
    data = scenario_data(definitions={}, catalog="parts.yaml")
    data.pop("accelerators")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    done = subprocess.run([sys.executable, "-m", "dcsim", "validate", str(path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    scenario = dcsim.load_scenario(path)
    specs = scenario_accelerators(scenario)
    assert [s.name for s in specs] == ["X1"] and specs[0].origin == str(parts)
    from dcsim.calibration.listing import list_text, show_text

    calibration = scenario_calibration(scenario)
    listing = list_text(calibration)
    line = next(line for line in listing.splitlines() if line.strip().startswith("X1 "))
    assert "extrapolated" in line
    shown = show_text(calibration, "X1")
    assert "extrapolated (like H100-SXM)" in shown and str(parts) in shown


def run_cli(tmp_path: Path, data: dict[str, Any],
            parts: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    if parts is not None:
        (tmp_path / "parts.yaml").write_text(yaml.safe_dump(parts))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "dcsim", "run", str(path), "-o", str(out)], capture_output=True,
                          text=True, cwd=ROOT)
    assert not out.exists(), "nothing is written for bad input"
    return done


def with_field(**changes: Any) -> dict[str, Any]:
    definition = copy.deepcopy(X1)
    definition.update(changes)
    return definition


@pytest.mark.parametrize(("definition", "expected"), [
    (with_field(memory=0), r"accelerators\.X1\.memory: Input should be greater than 0"),
    (with_field(memory_bandwidth="900TB/s"), r"accelerators\.X1\.memory_bandwidth: must be <= 1e\+14 B/s"),
    (with_field(peak_flops={"bf16": "1PFLOPS", "fp6": "4PFLOPS"}),
     r"accelerators\.X1\.peak_flops: unknown precision 'fp6'"),
    (with_field(like="H900"), r"accelerators\.X1\.like: unknown accelerator 'H900'; did you mean"),
    (with_field(idle_power="950W"), r"accelerators\.X1: idle_power must be below tdp"),
])
def test_bad_definitions_in_a_scenario_exit_2_with_one_line(tmp_path: Path, definition: dict[str, Any],
                                                           expected: str) -> None:
    import re

    done = run_cli(tmp_path, scenario_data(definitions={"X1": definition}))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(expected, lines[0]), lines
    assert lines[0].startswith(f"error: {tmp_path / 'bad.yaml'}: accelerators.X1"), lines


def test_duplicate_of_a_shipped_name_with_other_figures_is_an_error(tmp_path: Path) -> None:
    clash = with_field(memory="100GB")
    done = run_cli(tmp_path, scenario_data(accelerator="H100", definitions={"H100": clash}))
    assert done.returncode == 2
    line, = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'bad.yaml'}: accelerators.H100: the name 'H100' (or an alias) "
                           "already names the shipped catalog part 'H100-SXM'"), line


def test_bad_overlay_file_names_the_file_and_field(tmp_path: Path) -> None:
    data = scenario_data(catalog="parts.yaml")
    data.pop("accelerators")
    done = run_cli(tmp_path, data, {"format": "dcsim-catalog/1", "accelerators": {"X1": with_field(memory=0)}})
    assert done.returncode == 2
    line, = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'bad.yaml'}: {tmp_path / 'parts.yaml'}: accelerators.X1.memory: "
                           "Input should be greater than 0"), line
    done = run_cli(tmp_path, data, {"accelerators": {"X1": X1}})
    assert done.returncode == 2 and "format: expected `format: dcsim-catalog/1`" in done.stderr


def test_repeating_a_shipped_part_exactly_is_accepted() -> None:
    calibration = load_calibration()
    h100 = calibration.catalog.accelerator("H100")
    same = {"kind": "gpu", "memory": h100.memory_bytes.value,
            "memory_bandwidth": h100.memory_bandwidth.value if h100.memory_bandwidth else 0,
            "peak_flops": {"bf16": h100.peak_fp16_flops.value, "fp32": 67e12, "fp8": 1979e12, "int8": 1979e12},
            "tdp": 700, "idle_power": 75, "interconnect_bandwidth": 900e9, "network_bandwidth": 50e9}
    scenario = scenario_from_dict(scenario_data(accelerator="H100-SXM", definitions={"H100-SXM": same}))
    assert scenario_catalog(scenario).accelerator("H100-SXM").origin == "shipped catalog"


def test_unknown_accelerator_still_fails_with_a_hint() -> None:
    with pytest.raises(ScenarioError, match=r"cluster\.node_pools\.0\.accelerator: unknown accelerator 'X2'"):
        scenario_from_dict(scenario_data(accelerator="X2"))


def test_calibration_fit_accepts_measurements_of_a_part_the_catalog_lacks(tmp_path: Path) -> None:
    """Fit X1 from its own measurements (given its figures with --catalog); a scenario naming the
    overlay and the part's file then runs X1 at the measured speed, listed as measured."""
    parts = tmp_path / "parts.yaml"
    parts.write_text(yaml.safe_dump({"format": "dcsim-catalog/1", "accelerators": {"X1": X1}}))
    rows = ["kind,model,accelerator,batch,time"]
    rows += [f"training,ResNet-50,X1,{batch},{0.01 + 0.0004 * batch:.6f}" for batch in (16, 32, 64, 128)]
    measurements = tmp_path / "m.csv"
    measurements.write_text("\n".join(rows) + "\n")
    overlay = tmp_path / "fit.yaml"
    cli = [sys.executable, "-m", "dcsim", "calibration", "fit", str(measurements), "-o", str(overlay)]
    refused = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode == 2 and "unknown accelerator 'X1'" in refused.stderr and "--catalog" in refused.stderr
    done = subprocess.run([*cli, "--catalog", str(parts)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    data = scenario_data(calibration="fit.yaml", catalog="parts.yaml")
    data.pop("accelerators")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    scenario = dcsim.load_scenario(path)
    calibration = scenario_calibration(scenario)
    assert calibration.speed_basis("X1") == "measured"
    anchor = calibration.training.models["ResNet-50"].anchors["X1"]
    assert anchor.t0 == pytest.approx(0.01, rel=1e-3) and anchor.t1 == pytest.approx(0.0004, rel=1e-3)
    assert calibration.training.compute_time("ResNet-50", "X1", 64) == pytest.approx(0.01 + 0.0004 * 64, rel=1e-3)


def test_calibration_report_sets_extrapolated_points_apart(tmp_path: Path) -> None:
    """Measurements of a part no model was fitted to (here H200, shipped but never measured) are
    predicted by extrapolation: their own families in the chart, basis `extrapolated` in the CSV."""
    import pandas as pd

    measurements = tmp_path / "h200.csv"
    measurements.write_text("kind,model,accelerator,batch,time\ntraining,ResNet-50,H200,64,0.05\n"
                            "training,ResNet-50,H200,128,0.09\n")
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "dcsim", "calibration", "report", "-o", str(out),
                           "--measurements", str(measurements)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out / "predictions.csv")
    h200 = table[table["accelerator"] == "H200"]
    assert len(h200) == 2 and set(h200["basis"]) == {"extrapolated"}
    assert set(h200["family"]) == {"training cnn (extrapolated)"}
    assert set(table[table["accelerator"] == "V100"]["basis"]) == {"measured"}
