"""`dcsim calibration` as a user runs it, and overlays taking effect in scenarios."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import dcsim
from dcsim.calibration import load_calibration
from dcsim.scenario.loading import scenario_from_dict
from tests.helpers import ROOT, tiny_scenario
from tests.test_cli import dcsim as run_cli

DOC = (ROOT / "docs" / "calibration.md").read_text()


def docs_example(tmp_path: Path) -> Path:
    """The measurement CSV shown in docs/calibration.md, written as a user would save it."""
    text = re.search(r"```csv\n(.*?)```", DOC, flags=re.S)
    assert text is not None
    path = tmp_path / "my_runs.csv"
    path.write_text(text.group(1))
    return path


def test_list_and_show_print_sources_and_errors() -> None:
    listing = run_cli("calibration", "list")
    assert listing.returncode == 0, listing.stderr
    for name in ("K80", "T4", "A100-40GB", "B200", "TPU-v6e", "ResNet-50", "Llama-2-70B",
                 "cv: leave one accelerator out"):
        assert name in listing.stdout, name
    shown = run_cli("calibration", "show", "H100")
    assert shown.returncode == 0, shown.stderr
    assert "H100-SXM" in shown.stdout and "datasheet" in shown.stdout.lower()
    for figure in ("16-bit peak       989 TFLOP/s", "memory            80 GB", "memory bandwidth  3350 GB/s",
                   "interconnect      900 GB/s", "TDP               700 W", "idle power        75 W"):
        assert figure in shown.stdout, figure  # every figure with its unit
    assert "memory            32 GiB" in run_cli("calibration", "show", "TPU-v4").stdout
    assert "training speed vs V100" in shown.stdout
    model = run_cli("calibration", "show", "ResNet-50")
    assert "measured" in model.stdout or "anchors" in model.stdout
    bad = run_cli("calibration", "show", "H1000")
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: unknown accelerator or model 'H1000'; did you mean")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_report_writes_chart_and_predictions(tmp_path: Path) -> None:
    done = run_cli("calibration", "report", "-o", str(tmp_path / "cal"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cal" / "calibration.png").stat().st_size > 10_000
    predictions = (tmp_path / "cal" / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "family,kind,model,accelerator,measured,predicted,basis"
    families = {line.split(",")[0] for line in predictions[1:]}
    assert {"training scaling", "training cnn"} <= families
    assert any(f.startswith("inference") for f in families) and any(f.startswith("power") for f in families)
    assert "median" in done.stdout


def test_fit_overlay_from_the_documented_example_and_use_it(tmp_path: Path) -> None:
    measurements = docs_example(tmp_path)
    overlay = tmp_path / "my_overlay.yaml"
    done = run_cli("calibration", "fit", str(measurements), "-o", str(overlay))
    assert done.returncode == 0, done.stderr
    assert "fitted training, scaling" in done.stdout
    body = yaml.safe_load(overlay.read_text())
    anchor = body["training"]["models"]["MyNet"]["anchors"]["H100-SXM"]
    # Two batches, so the line through them: 85 ms at 32, 150 ms at 64.
    assert anchor["t1_s_per_sample"] == pytest.approx(0.065 / 32, rel=1e-6)
    assert anchor["t0_s"] == pytest.approx(0.085 - 32 * 0.065 / 32, rel=1e-6)

    calibration = load_calibration([overlay])
    step = calibration.step_time("MyNet", "H100", 16, 2, 64)
    assert step.compute == pytest.approx(0.150, rel=1e-6)
    assert step.total == pytest.approx(0.190, rel=1e-6)  # one network point: reproduced exactly
    assert calibration.relative_speed("ResNet-50", "H100") == load_calibration().relative_speed("ResNet-50", "H100")

    listing = run_cli("calibration", "list", "--overlay", str(overlay))
    assert "MyNet" in listing.stdout and str(overlay) in listing.stdout

    data = tiny_scenario()
    data["calibration"] = ["my_overlay.yaml"]
    data["workload"]["training"]["models"] = {"MyNet": 1}
    scenario = scenario_from_dict(data, "s.yaml", base_dir=str(tmp_path))
    result = dcsim.run(scenario)
    assert result.summary["training"]["jobs_completed"] == 60
    assert set(result.jobs["model"]) == {"MyNet"}


def test_fit_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,model,accelerator,time\ntraining,MyNet,H100,fast\n")
    done = run_cli("calibration", "fit", str(bad), "-o", str(tmp_path / "o.yaml"))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {bad}:2: column 'time': expected a time > 0 like \"120ms\" or seconds, "
                                   "got 'fast'")
    assert not (tmp_path / "o.yaml").exists()


def test_scenario_with_unknown_model_or_missing_overlay_says_so(tmp_path: Path) -> None:
    data = tiny_scenario()
    data["workload"]["training"]["models"] = {"MyNet": 1}
    data["calibration"] = "missing.yaml"
    with pytest.raises(dcsim.errors.ScenarioError) as info:
        scenario_from_dict(data, "s.yaml", base_dir=str(tmp_path))
    problems = info.value.problems
    assert any(p.startswith("s.yaml: calibration.0: ") and "cannot read calibration overlay" in p for p in problems)
    assert any("workload.training.models.MyNet: no training calibration for model 'MyNet'" in p for p in problems)


def test_overlays_merge_per_accelerator_and_reload_when_rewritten(tmp_path: Path) -> None:
    """A one-GPU ResNet-50 overlay keeps the shipped anchors elsewhere; a prefill-only LLM overlay keeps
    the shipped decode terms; an overlay rewritten on disk is read again."""
    from dcsim.catalog import load_catalog

    shipped = load_calibration()
    rows = "kind,model,accelerator,batch,time\ntraining,ResNet-50,V100,32,0.2\ntraining,ResNet-50,V100,64,0.4\n"
    measurements, overlay = tmp_path / "m.csv", tmp_path / "o.yaml"
    measurements.write_text(rows)
    assert run_cli("calibration", "fit", str(measurements), "-o", str(overlay)).returncode == 0
    merged = load_calibration([overlay]).training.models["ResNet-50"]
    assert set(merged.anchors) == set(shipped.training.models["ResNet-50"].anchors)
    assert merged.alpha == shipped.training.models["ResNet-50"].alpha
    assert merged.anchors["V100"].t1 == pytest.approx(0.2 / 32, rel=1e-6)

    prompts = "".join(f"prefill,llm-13b,H100,1,{n},{0.02 + n * 1e-5}\n" for n in (128, 256, 512, 1024, 2048, 4096))
    measurements.write_text("kind,model,accelerator,batch,tokens,time\n" + prompts)
    assert run_cli("calibration", "fit", str(measurements), "-o", str(overlay), "--force").returncode == 0
    spec = load_catalog().model("Llama-2-13B")
    reloaded = load_calibration([overlay])
    assert reloaded.training.models["ResNet-50"].anchors["V100"] == shipped.training.models["ResNet-50"].anchors["V100"]
    assert reloaded.inference.decode_time(spec, "H100-SXM", 8, 8000) == shipped.inference.decode_time(
        spec, "H100-SXM", 8, 8000)
    assert reloaded.inference.prefill_time(spec, "H100-SXM", 1024) != shipped.inference.prefill_time(
        spec, "H100-SXM", 1024)


@pytest.mark.parametrize(("text", "message"), [
    ("format: dcsim-calibration/1\ntraining: [1, 2]\n", "section 'training': expected a mapping, got list"),
    ("format: dcsim-calibration/1\ninference: {accelerators: 3}\n", "malformed calibration entry"),
    ("just text\n", "not a dcsim calibration file"),
])
def test_malformed_overlays_give_one_line(tmp_path: Path, text: str, message: str) -> None:
    overlay = tmp_path / "o.yaml"
    overlay.write_text(text)
    done = run_cli("calibration", "list", "--overlay", str(overlay))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


def test_duplicate_columns_and_unwritable_output(tmp_path: Path) -> None:
    bad = tmp_path / "d.csv"
    bad.write_text("kind,model,accelerator,time,time\ntraining,ResNet-50,V100,1,2\n")
    done = run_cli("calibration", "fit", str(bad), "-o", str(tmp_path / "o.yaml"))
    assert done.returncode == 2 and "duplicate column 'time'" in done.stderr
    good = docs_example(tmp_path)
    blocked = tmp_path / "file"
    blocked.write_text("")
    done = run_cli("calibration", "fit", str(good), "-o", str(blocked / "o.yaml"))
    assert done.returncode == 2 and "cannot write the overlay" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_power_cap_without_a_fitted_curve_still_slows_jobs() -> None:
    """H100 has no Zeus fit: it draws TDP when busy, and a cap below TDP slows it by the shared curve."""
    calibration = load_calibration()
    assert calibration.power.training_power("H100-SXM") is None
    data = tiny_scenario()
    free = dcsim.run(scenario_from_dict(data))
    data["cluster"]["node_pools"][0]["power_cap"] = "500W"
    capped = dcsim.run(scenario_from_dict(data))
    slowdown = calibration.power.cap_slowdown("H100-SXM", 500.0, demand=700.0)
    assert slowdown > 1.0
    gpu = free.jobs["accelerator_model"] == "H100-SXM"
    assert capped.summary["training"]["jct_s"]["mean"] > free.summary["training"]["jct_s"]["mean"]
    assert gpu.any()


def test_report_and_fit_never_overwrite_what_dcsim_did_not_write(tmp_path: Path) -> None:
    """-o FILE is a one-line error; -o . (or any folder dcsim did not write) and an existing overlay are
    left alone unless --force, which replaces only the files the command writes."""
    afile = tmp_path / "afile"
    afile.write_text("mine")
    done = run_cli("calibration", "report", "-o", str(afile))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: -o {afile}: exists and is not a folder; choose another output path"
    assert afile.read_text() == "mine"

    (tmp_path / "predictions.csv").write_text("mine")
    done = run_cli("calibration", "report", "-o", ".", cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "refusing to write results over the current folder" in done.stderr and "--force" in done.stderr
    assert (tmp_path / "predictions.csv").read_text() == "mine"
    assert not (tmp_path / "calibration.png").exists()
    done = run_cli("calibration", "report", "-o", ".", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "predictions.csv").read_text().startswith("family,") and afile.read_text() == "mine"

    folder = tmp_path / "cal"  # a folder of dcsim's own is replaced on the next run, like a run's results
    assert run_cli("calibration", "report", "-o", str(folder)).returncode == 0
    assert run_cli("calibration", "report", "-o", str(folder)).returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == [".dcsim-output", "calibration.png", "predictions.csv"]

    measurements = docs_example(tmp_path)
    overlay = tmp_path / "existing.yaml"
    overlay.write_text("# my notes\n")
    done = run_cli("calibration", "fit", str(measurements), "-o", str(overlay))
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: -o {overlay}: exists; pass --force to overwrite it or choose another "
                                   "file name")
    assert overlay.read_text() == "# my notes\n"
    done = run_cli("calibration", "fit", str(measurements), "-o", str(overlay), "--force")
    assert done.returncode == 0, done.stderr
    assert "MyNet" in overlay.read_text()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary file left"


def test_formula_like_model_names_are_quoted_in_predictions(tmp_path: Path) -> None:
    measurements = tmp_path / "m.csv"
    measurements.write_text("kind,model,accelerator,batch,time\ntraining,=Evil,V100,32,0.2\n"
                            "training,=Evil,V100,64,0.4\n")
    overlay = tmp_path / "o.yaml"
    assert run_cli("calibration", "fit", str(measurements), "-o", str(overlay)).returncode == 0
    done = run_cli("calibration", "report", "-o", str(tmp_path / "cal"), "--measurements", str(measurements),
                   "--overlay", str(overlay))
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "cal" / "predictions.csv").read_text()
    assert ",'=Evil," in text and ",=Evil," not in text
