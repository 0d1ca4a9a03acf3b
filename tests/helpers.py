"""Small scenario builders shared by tests (plain dicts, as a YAML file would give)."""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path
from typing import Any, cast

import yaml

from dcsim.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
SHARED_DATA = ROOT.parent / "shared" / "data"
PHILLY = SHARED_DATA / "philly-pollux" / "philly.csv"


def tiny_scenario(**changes: Any) -> dict[str, Any]:
    """Two pools (H100 and TPU-v4), 60 synthetic jobs; `changes` replace top-level keys."""
    data: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "cluster": {"node_pools": [
            {"name": "gpu", "count": 2, "accelerator": "H100", "accelerators_per_node": 8,
             "host_power": {"idle": "500W", "busy": "900W"}},
            {"name": "tpu", "count": 2, "accelerator": "TPU-v4", "accelerators_per_node": 4,
             "host_power": {"idle": "200W"}},
        ]},
        "workload": {"training": {
            "source": "synthetic", "jobs": 60, "arrival": {"process": "poisson", "rate": "30/h"},
            "accelerators": {"values": [1, 2, 4, 8], "weights": [4, 2, 2, 1]},
            "duration": {"distribution": "lognormal", "median": "20min", "sigma": 1.0},
            "models": {"ResNet-50": 1, "LM": 1}, "estimate_error": 0.5, "startup": "1min",
        }},
        "policies": {"scheduler": "fifo", "placement": "pack"},
    }
    data.update(copy.deepcopy(changes))
    return data


def speed_ratio(model: str, accelerator: str, reference: str) -> float:
    """Training speed of `model` on `accelerator` over its speed on `reference`, from the shipped calibration."""
    from dcsim.calibration import load_calibration

    calibration = load_calibration()
    return calibration.relative_speed(model, accelerator) / calibration.relative_speed(model, reference)


@functools.cache
def _shipped_calibration() -> dict[str, Any]:
    with open(ROOT / "dcsim" / "catalog" / "calibration.yaml", encoding="utf-8") as file:
        return cast(dict[str, Any], yaml.safe_load(file))


def _figure(accelerator: str, field: str) -> float:
    """A catalog figure of an accelerator (memory_bandwidth, interconnect_bandwidth), in SI units."""
    figure = getattr(load_catalog().accelerator(accelerator), field)
    assert figure is not None, (accelerator, field)
    return float(figure.value)


def _nearest_by_bandwidth(measured: list[str], accelerator: str) -> str:
    """The measured accelerator closest in log memory bandwidth (itself if measured), as docs/calibration.md says."""
    if accelerator in measured:
        return accelerator
    target = math.log(_figure(accelerator, "memory_bandwidth"))
    return min(sorted(measured), key=lambda name: abs(math.log(_figure(name, "memory_bandwidth")) - target))


def split_gang_speed(model: str, accelerator: str, demand: int, nodes: int, largest_node: int) -> float:
    """Speed of a gang on `nodes` nodes over its speed on the fewest nodes that could hold it.

    The documented rule (docs/calibration.md "Multi-accelerator scaling", no network section):
    step time = compute + sync, sync = alpha + beta x (accelerators - 2) fitted per class (`local`
    inside one node, `network` across nodes). Across nodes, for a model with a parameter count on an
    accelerator with a catalog NIC figure, the step is the one-node (local) step plus what a ring
    all-reduce of 2-byte gradients loses on the NICs against the same ring inside a node. A job
    spread over more nodes than it needs runs at step(fewest nodes) / step(its nodes). Read straight
    from the shipped YAML files, so the oracle does not go through dcsim's own classes.
    """
    fewest = -(-demand // largest_node)
    if nodes <= fewest or model not in _shipped_calibration()["training"]["models"]:
        return 1.0  # packed as tightly as the cluster allows, or a model with no calibrated steps (generic)
    return _oracle_step(model, accelerator, demand, fewest) / _oracle_step(model, accelerator, demand, nodes)


def count_speed(model: str, accelerator: str, demand: int, largest_node: int, reference: str = "V100") -> float:
    """Speed of a `demand`-accelerator gang over what the one-accelerator speed ratio says (issue 15):
    [step(reference, n) / step(accelerator, n)] / [step(reference, 1) / step(accelerator, 1)], both on the
    fewest nodes that hold the gang on `accelerator` (the reference on this cluster's NICs); 1 for one
    accelerator, the reference or generic."""
    if demand <= 1 or accelerator == reference or model not in _shipped_calibration()["training"]["models"]:
        return 1.0
    fewest = -(-demand // largest_node)
    at_count = (_oracle_step(model, reference, demand, fewest, nic_of=accelerator)
                / _oracle_step(model, accelerator, demand, fewest))
    return at_count / (_oracle_step(model, reference, 1, 1) / _oracle_step(model, accelerator, 1, 1))


@functools.cache
def _parameters(model: str) -> float | None:
    with open(ROOT / "dcsim" / "catalog" / "models.yaml", encoding="utf-8") as file:
        value = yaml.safe_load(file)["models"].get(model, {}).get("params")
    return None if value is None else float(value)


def _nic_extra(model: str, accelerator: str, demand: int, spanned: int, nic_of: str) -> float | None:
    """Ring all-reduce over `spanned` nodes (NIC x accelerators per node) minus the same ring in one node."""
    params = _parameters(model)
    nic = load_catalog().accelerator(nic_of).network_bandwidth
    if params is None or nic is None:
        return None
    size, share = 2.0 * params, 2 * (demand - 1) / demand
    intra = _figure(accelerator, "interconnect_bandwidth") / 2
    inter = float(nic.value) * -(-demand // spanned)
    return max(share * size / min(inter, intra) - share * size / intra, 0.0)


def _oracle_step(model: str, accelerator: str, demand: int, spanned: int, nic_of: str | None = None) -> float:
    """compute + sync of one step, straight from calibration.yaml and the catalog."""
    if spanned > 1 and demand > 1:
        extra = _nic_extra(model, accelerator, demand, spanned, nic_of or accelerator)
        if extra is not None:
            return _oracle_step(model, accelerator, demand, 1) + extra
    calibration = _shipped_calibration()
    fit = calibration["training"]["models"][model]
    # One accelerator's compute per step at the anchor batch, scaled by (bandwidth ratio) ^ alpha off the anchor.
    anchor_name = _nearest_by_bandwidth(list(fit["anchors"]), accelerator)
    anchor = fit["anchors"][anchor_name]
    ratio = _figure(anchor_name, "memory_bandwidth") / _figure(accelerator, "memory_bandwidth")
    compute = (anchor["t0_s"] + anchor["t1_s_per_sample"] * anchor["batch"]) * ratio ** fit["alpha"]
    kind = "local" if spanned <= 1 else "network"
    fits = {acc: classes[kind] for acc, classes in calibration["scaling"]["models"].get(model, {}).items()
            if kind in classes}
    if demand <= 1 or not fits:
        return float(compute)
    measured = _nearest_by_bandwidth(list(fits), accelerator)
    seconds = fits[measured]["alpha_s"] + fits[measured]["beta_s"] * max(demand - 2, 0)
    if kind == "local":  # off the measured accelerator, scaled by the intra-node link bandwidths
        seconds *= _figure(measured, "interconnect_bandwidth") / _figure(accelerator, "interconnect_bandwidth")
    return float(compute + seconds)


def write_yaml(tmp_path: Path, data: object, name: str = "s.yaml") -> Path:
    """Write `data` as a YAML file in `tmp_path` (a scenario, usually)."""
    import yaml

    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def scenario_problems(path: Path, overrides: list[str] | None = None) -> list[str]:
    """The problems the loader reports for the scenario at `path` (it must refuse it)."""
    import pytest

    from dcsim.errors import ScenarioError
    from dcsim.scenario import load_scenario

    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides or [])
    return info.value.problems


def assert_cli_refuses(tmp_path: Path, data: object, *expected: str) -> None:
    """`dcsim validate` and `dcsim run` of the scenario `data` both exit 2 with one line naming the file and
    each of `expected`, and the run writes nothing."""
    import subprocess
    import sys

    path = write_yaml(tmp_path, data, "bad.yaml")
    out = tmp_path / "out"
    for command in (["validate", str(path)], ["run", str(path), "-o", str(out)]):
        done = subprocess.run([sys.executable, "-m", "dcsim", *command], capture_output=True, text=True, check=False)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert "bad.yaml" in lines[0] and all(part in lines[0] for part in expected), lines[0]
    assert not out.exists()
