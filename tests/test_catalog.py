"""The shipped catalog: provenance on every figure, lookups, and agreement with a rebuild."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dcsim.catalog import load_catalog
from dcsim.errors import CatalogError
from tests.helpers import ROOT, SHARED_DATA


def test_required_accelerators_with_sourced_figures() -> None:
    catalog = load_catalog()
    assert {"V100", "A100", "H100", "TPU-v4", "TPU-v5e"} <= set(catalog.accelerators)
    for spec in catalog.accelerators.values():
        figures = spec.figures()
        assert {"peak_fp16_flops", "memory_bytes", "tdp_w", "idle_w"} <= set(figures)
        for name, figure in figures.items():
            assert figure.value > 0, (spec.name, name)
            assert figure.source.strip(), (spec.name, name)
            assert not figure.estimated or figure.note, f"{spec.name}.{name} is estimated without saying how"
        assert spec.idle_w.value < spec.tdp_w.value


def test_speed_table_is_relative_to_the_reference() -> None:
    catalog = load_catalog()
    for model in catalog.model_types():
        assert catalog.relative_speed(model, catalog.reference_accelerator) == 1.0
        for accelerator in catalog.accelerators:
            assert catalog.relative_speed(model, accelerator) > 0


def test_aliases_and_close_matches() -> None:
    catalog = load_catalog()
    assert catalog.accelerator("h100-80gb").name == "H100"
    with pytest.raises(CatalogError, match=r"unknown accelerator 'H1000'; did you mean H100"):
        catalog.accelerator("H1000")


@pytest.mark.skipif(not (SHARED_DATA / "gavel-throughputs").is_dir(), reason="../shared/data not present")
def test_shipped_speed_table_matches_a_rebuild_from_shared_data() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_catalog.py"), "--check",
                           "--data", str(SHARED_DATA)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
