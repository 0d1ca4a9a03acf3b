"""The shipped catalog: provenance on every figure, lookups, and agreement with a rebuild."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dcsim.calibration import load_calibration
from dcsim.catalog import load_catalog
from dcsim.errors import CatalogError
from tests.helpers import ROOT, SHARED_DATA


def test_required_accelerators_with_sourced_figures() -> None:
    catalog = load_catalog()
    required = {"K80", "P100", "V100", "T4", "A100-40GB", "A100-80GB", "H100-SXM", "B200", "TPU-v2", "TPU-v3",
                "TPU-v4", "TPU-v5e", "TPU-v5p", "TPU-v6e"}
    assert required <= set(catalog.accelerators)
    for spec in catalog.accelerators.values():
        figures = spec.figures()
        assert {"peak_fp16_flops", "memory_bytes", "memory_bandwidth", "interconnect_bandwidth", "tdp_w",
                "idle_w"} <= set(figures)
        for name, figure in figures.items():
            assert figure.value > 0, (spec.name, name)
            assert figure.source.strip(), (spec.name, name)
            assert not figure.estimated or figure.note, f"{spec.name}.{name} is estimated without saying how"
        assert spec.idle_w.value < spec.tdp_w.value


def test_speeds_are_relative_to_the_reference() -> None:
    catalog, calibration = load_catalog(), load_calibration()
    for model in calibration.model_types():
        assert calibration.relative_speed(model, catalog.reference_accelerator) == pytest.approx(1.0, rel=1e-12)
        for accelerator in catalog.accelerators:
            assert calibration.relative_speed(model, accelerator) > 0


def test_aliases_and_close_matches() -> None:
    catalog = load_catalog()
    assert catalog.accelerator("h100-80gb").name == "H100-SXM"
    assert catalog.accelerator("H100").name == "H100-SXM"
    assert catalog.accelerator("A100").name == "A100-80GB"
    with pytest.raises(CatalogError, match=r"unknown accelerator 'H1000'; did you mean"):
        catalog.accelerator("H1000")
    assert catalog.model("llama2-70b").name == "Llama-2-70B"
    assert catalog.model("llm-13b").params == 13e9
    with pytest.raises(CatalogError, match=r"unknown model 'ResNet-51'; did you mean ResNet-50"):
        catalog.model("ResNet-51")


@pytest.mark.skipif(not (SHARED_DATA / "gavel-throughputs").is_dir(), reason="../shared/data not present")
def test_shipped_calibration_matches_a_rebuild_from_shared_data() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_catalog.py"), "--check",
                           "--data", str(SHARED_DATA)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
