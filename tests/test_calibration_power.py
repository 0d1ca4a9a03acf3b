"""Power models: hand-computed values, recovery of known coefficients, monotonicity, serialisation,
and (with ../shared/data) the fit to Zeus and ML.ENERGY within the errors observed when it was built."""

from __future__ import annotations

import csv
import itertools
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dcsim.calibration.fitting import FitError, ape_stats
from dcsim.calibration.power import CapFit, PowerModel, ServingFit, check_serving, energy_per_token, fit_power
from dcsim.calibration.table import check_row, measurement_frame
from dcsim.catalog import load_catalog
from dcsim.errors import CalibrationError
from tests.helpers import SHARED_DATA

CATALOG = load_catalog()
H100 = CATALOG.canonical_accelerator("H100")
V100 = CATALOG.canonical_accelerator("V100")
A40 = CATALOG.canonical_accelerator("A40")
needs_data = pytest.mark.skipif(
    not (SHARED_DATA / "zeus-power-traces").is_dir() or not (SHARED_DATA / "mlenergy-benchmark-v3").is_dir(),
    reason="needs ../shared/data (Zeus power traces and ML.ENERGY)")


def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return measurement_frame(check_row(row, CATALOG, f"row {i}") for i, row in enumerate(rows))


def explicit_model(beta: float = 0.5) -> PowerModel:
    return PowerModel(
        serving={H100: ServingFit(p_min=300.0, p_max=600.0, batch_scale=10.0, count_exponent=0.5, points=9,
                                  source="hand")},
        training={V100: CapFit(busy_w=200.0, busy_fraction=0.5, cap_power_ratio=0.9, cap_time_exponent=beta,
                               jobs=3, points=9, source="hand"),
                  A40: CapFit(busy_w=250.0, busy_fraction=0.8, cap_power_ratio=0.95, cap_time_exponent=1.0,
                              jobs=2, points=8, source="hand")},
        shared_cap_time_exponent=0.8, shared_busy_fraction=0.6, catalog=CATALOG,
        errors=(FitError("power.serving", "fit: hand", 9, 1.0, 1.0, 2.0),))


def test_hand_computed_values() -> None:
    model = explicit_model()
    expected = (300.0 + 300.0 * (1.0 - math.exp(-1.0))) / 2.0  # batch 10 = b0, 4 GPUs, alpha 0.5
    assert model.serving_power(H100, 10.0, count=4) == pytest.approx(expected, rel=1e-12)
    assert model.serving_power(V100, 10.0) is None
    assert model.training_power(V100) == 200.0
    assert model.training_power(V100, 150.0) == pytest.approx(135.0)  # 0.9 x 150 < 200
    assert model.training_power(V100, 300.0) == 200.0
    assert model.training_power(H100) is None
    assert model.cap_slowdown(V100, 100.0) == pytest.approx(math.sqrt(2.0))  # (200 / 100) ** 0.5
    assert model.cap_slowdown(V100, 250.0) == 1.0
    # no curve for H100: shared beta 0.8 and draw 0.6 x TDP
    demand = 0.6 * CATALOG.accelerators[H100].tdp_w.value
    assert model.cap_slowdown(H100, demand / 2) == pytest.approx(2.0 ** 0.8)
    assert "shared curve" in model.cap_basis(H100) and model.cap_basis(V100) == f"fitted on {V100}"
    assert energy_per_token(300.0, 2, 0.02, 10.0) == pytest.approx(1.2)
    assert model.serving_energy_per_token(H100, 10.0, 0.02, count=4) == pytest.approx(expected * 4 * 0.02 / 10)
    assert model.idle_power(H100) == CATALOG.accelerators[H100].idle_w.value


def test_cap_multiplier_shape() -> None:
    model = explicit_model()
    for accelerator in (V100, A40, H100):
        caps = np.linspace(20.0, 1200.0, 400)
        factors = [model.cap_slowdown(accelerator, cap) for cap in caps]
        assert min(factors) >= 1.0
        assert all(later <= earlier for earlier, later in itertools.pairwise(factors))
    assert model.cap_slowdown(V100, 200.0) == 1.0  # exactly at the busy draw
    with pytest.raises(CalibrationError, match="power cap must be > 0"):
        model.cap_slowdown(V100, 0.0)
    with pytest.raises(CalibrationError, match="no power-cap calibration"):
        PowerModel(catalog=CATALOG).cap_slowdown(V100, 100.0)


def serving_rows(p_min: float, p_max: float, b0: float, alpha: float) -> list[dict[str, Any]]:
    return [{"kind": "decode", "model": "llm-8b", "accelerator": "H100", "count": n, "batch": b, "tokens": 200,
             "time": 0.02, "power": (p_min + (p_max - p_min) * (1 - math.exp(-b / b0))) * n ** -alpha}
            for b in (1, 2, 4, 8, 16, 32, 64, 128, 256) for n in (1, 2, 4, 8)]


def cap_rows(beta: float, eta: float, demands: tuple[float, ...] = (120.0, 160.0, 200.0)) -> list[dict[str, Any]]:
    return [{"kind": "power_cap", "model": "net", "accelerator": "V100", "batch": 32, "power_cap": cap,
             "time": 100.0 * max(1.0, demand / cap) ** beta, "power": min(demand, eta * cap), "source": f"job {demand}"}
            for demand in demands for cap in range(100, 275, 25)]


def test_fit_recovers_known_coefficients() -> None:
    model = fit_power(table([*serving_rows(300.0, 600.0, 20.0, 0.1), *cap_rows(0.7, 0.9)]), CATALOG)
    fit = model.serving[H100]
    assert (fit.p_min, fit.p_max, fit.batch_scale, fit.count_exponent) == pytest.approx((300, 600, 20, 0.1), rel=1e-3)
    cap = model.training[V100]
    assert cap.busy_w == pytest.approx(160.0) and cap.jobs == 3 and cap.points == 21
    assert cap.cap_power_ratio == pytest.approx(0.9) and cap.cap_time_exponent == pytest.approx(0.7)
    assert cap.busy_fraction == pytest.approx(160.0 / CATALOG.accelerators[V100].tdp_w.value, rel=1e-5)
    fit_errors = {(e.model, e.check): e for e in model.errors}
    assert fit_errors[("power.serving", f"fit: {H100}")].worst_ape < 0.1
    assert fit_errors[("power.cap_time", "fit: job's own uncapped draw known")].worst_ape < 1e-3


def test_serving_fit_is_monotone_and_bounded_when_power_falls_with_batch() -> None:
    rows = serving_rows(500.0, 300.0, 20.0, 0.0)  # a falling curve: the fit must stay flat, not fall
    model = fit_power(table(rows), CATALOG)
    powers = [model.serving_power(H100, b) or 0.0 for b in np.linspace(0, 1000, 200)]
    assert all(later >= earlier for earlier, later in itertools.pairwise(powers))
    assert max(powers) <= CATALOG.accelerators[H100].tdp_w.value


def test_too_few_points_raise() -> None:
    with pytest.raises(CalibrationError, match=rf"cannot fit serving power vs batch for {H100}: 3 measurement "
                                                r"points, need at least 5"):
        fit_power(table(serving_rows(300.0, 600.0, 20.0, 0.0)[:3]), CATALOG)
    uncapped = cap_rows(0.7, 0.9, demands=(90.0,))  # every cap is at or above the draw
    with pytest.raises(CalibrationError, match=rf"power-cap model for {V100} .*0 measurement points"):
        fit_power(table(uncapped), CATALOG)
    with pytest.raises(CalibrationError, match="no power_cap rows and no decode rows with power"):
        fit_power(table([{"kind": "training", "model": "ResNet-50", "accelerator": "V100", "time": 0.1}]), CATALOG)


def test_round_trip_and_yaml() -> None:
    measured = table([*serving_rows(300.0, 600.0, 20.0, 0.1), *cap_rows(0.7, 0.9)])
    model = fit_power(measured, CATALOG)
    again = PowerModel.from_dict(yaml.safe_load(yaml.safe_dump(model.to_dict())), CATALOG)
    assert again == model
    pd.testing.assert_frame_equal(again.predictions(measured, CATALOG), model.predictions(measured, CATALOG))
    with pytest.raises(CalibrationError, match="p_min <= p_max <= TDP"):
        PowerModel(serving={H100: ServingFit(300.0, 900.0, 10.0, 0.0, 5, "bad")}, catalog=CATALOG)


def test_overlay_replaces_one_accelerator() -> None:
    base = explicit_model(beta=0.5)
    other = PowerModel(training={V100: CapFit(180.0, 0.6, 0.8, 0.9, 1, 5, "user")}, catalog=CATALOG,
                       errors=(FitError("power.cap_time", "fit: user", 5, 1.0, 1.0, 1.0),))
    merged = base.overlay(other)
    assert merged.training[V100] == other.training[V100] and merged.training[A40] == base.training[A40]
    assert merged.serving == base.serving
    assert merged.cap_slowdown(V100, 90.0) == pytest.approx(2.0 ** 0.9)
    assert merged.shared_cap_time_exponent == base.shared_cap_time_exponent  # other has none
    assert merged.errors == base.errors + other.errors


# ---- the shipped datasets -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def measured() -> pd.DataFrame:
    from dcsim.calibration.sources import mlenergy, zeus
    return pd.concat([zeus.read(SHARED_DATA), mlenergy.read(SHARED_DATA)], ignore_index=True)


@pytest.fixture(scope="module")
def fitted(measured: pd.DataFrame) -> PowerModel:
    return fit_power(measured, CATALOG)


def error(model: PowerModel, family: str, check: str) -> FitError:
    return next(e for e in model.errors if e.model == family and e.check == check)


def csv_rows(path: Any) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@needs_data
def test_readers_keep_or_count_every_row(measured: pd.DataFrame) -> None:
    from dcsim.calibration.sources import mlenergy
    zeus_files = sorted((SHARED_DATA / "zeus-power-traces").glob("summary_power_*.csv"))
    assert (measured["kind"] == "power_cap").sum() == sum(len(csv_rows(path)) for path in zeus_files)
    total = len(csv_rows(SHARED_DATA / mlenergy.V3)) + len(csv_rows(SHARED_DATA / mlenergy.V2))
    skipped = mlenergy.skipped(SHARED_DATA)
    assert (measured["kind"] == "decode").sum() + sum(skipped.values()) == total
    assert len(mlenergy.read_superseded(SHARED_DATA)) == skipped[mlenergy.SKIP_V2_H100]
    counted: Counter[str] = Counter()
    mlenergy.read(SHARED_DATA, counted)
    assert sorted(counted.values()) == sorted(count for count in skipped.values() if count)
    decode = measured[measured["kind"] == "decode"]
    assert decode["power"].notna().all() and decode["tokens"].notna().all()


@needs_data
def test_mlenergy_power_is_total_over_gpus(measured: pd.DataFrame) -> None:
    from dcsim.calibration.sources import mlenergy
    v3 = csv_rows(SHARED_DATA / mlenergy.V3)
    total = np.array([float(r["avg_power_watts"]) for r in v3])
    derived = np.array([float(r["energy_per_token_joules"]) * float(r["output_throughput_tokens_per_sec"]) for r in v3])
    np.testing.assert_allclose(total, derived, rtol=1e-6)
    decode = measured[measured["kind"] == "decode"]
    tdp = decode["accelerator"].map(lambda name: CATALOG.accelerators[name].tdp_w.value)
    assert (decode["power"] <= tdp).all()  # per GPU, after dividing by the GPU count


@needs_data
def test_fit_errors_within_observed_bounds(fitted: PowerModel) -> None:
    # in-sample medians observed when fitted (13.9, 9.5, 21.9, 16.9, 4.0, 2.6, 2.0, 3.2, 3.9 %) plus margin
    bounds = {("power.serving", "fit: all accelerators"): 16.0, ("power.serving", f"fit: {H100}"): 12.0,
              ("power.serving", "fit: B200"): 25.0, ("power.serving", "fit: A100-40GB"): 20.0,
              ("power.cap_time", "fit: all accelerators"): 5.5,
              ("power.cap_time", "fit: job's own uncapped draw known"): 3.5,
              ("power.cap_power", "fit: job's own uncapped draw known"): 3.0,
              ("power.cap_time", "cv: leave one accelerator out"): 4.5,
              ("power.cap_time", "cv: leave one accelerator out, as simulated"): 5.0}
    for (family, check), bound in bounds.items():
        assert error(fitted, family, check).median_ape <= bound, (family, check)
    assert set(fitted.training) == {V100, A40, "P100", CATALOG.canonical_accelerator("rtx6000")}
    assert set(fitted.serving) == {H100, "B200", "A100-40GB"}


@needs_data
def test_predictions_match_reported_errors(fitted: PowerModel, measured: pd.DataFrame) -> None:
    predictions = fitted.predictions(measured, CATALOG)
    assert list(predictions.columns) == ["family", "kind", "model", "accelerator", "measured", "predicted"]
    for family, name, check in (("power serving", "power.serving", "fit: all accelerators"),
                                ("power cap time", "power.cap_time", "fit: all accelerators"),
                                ("power cap power", "power.cap_power", "fit: all accelerators")):
        rows = predictions[predictions["family"] == family]
        recomputed = ape_stats(name, check, rows["predicted"], rows["measured"])
        reported = error(fitted, name, check)
        assert (recomputed.points, recomputed.median_ape, recomputed.worst_ape) == \
            (reported.points, reported.median_ape, reported.worst_ape)


@needs_data
def test_fitted_curves_have_the_required_shape(fitted: PowerModel) -> None:
    for accelerator in [*fitted.training, H100, "B200"]:
        draw = fitted.training_power(accelerator)
        caps = np.linspace(30.0, 1100.0, 300)
        factors = [fitted.cap_slowdown(accelerator, cap) for cap in caps]
        assert min(factors) >= 1.0
        assert all(later <= earlier for earlier, later in itertools.pairwise(factors))
        if draw is not None:
            assert fitted.cap_slowdown(accelerator, draw) == 1.0
            assert all((fitted.training_power(accelerator, cap) or 0.0) <= draw for cap in caps)
    for accelerator, fit in fitted.serving.items():
        tdp = CATALOG.accelerators[accelerator].tdp_w.value
        for count in (1, 2, 4, 8):
            powers = [fit.power(b, count) for b in np.linspace(0.0, 4096.0, 300)]
            assert all(later >= earlier for earlier, later in itertools.pairwise(powers))
            assert 0.0 < max(powers) <= tdp


@needs_data
def test_cross_dataset_check_runs(fitted: PowerModel) -> None:
    from dcsim.calibration.sources import mlenergy
    check = check_serving(fitted, mlenergy.read_superseded(SHARED_DATA), "check: ML.ENERGY v2 H100")
    assert check.points == mlenergy.skipped(SHARED_DATA)[mlenergy.SKIP_V2_H100] and check.median_ape > 0
