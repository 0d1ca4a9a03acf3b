"""A bounded swap space (paged_kv.swap_space): a preemption whose KV fits is swapped as without the
bound; one that does not fit is recomputed, exactly as under `preemption: recompute`, and counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dcsim
from dcsim.calibration.inference import kv_bytes_per_token
from dcsim.catalog import load_catalog
from dcsim.errors import DcsimError
from dcsim.reporting.kv_cache_report import kv_cache_tables
from dcsim.results import RunResult
from dcsim.scenario import scenario_from_dict
from tests.helpers import assert_cli_refuses

MODEL = "Llama-2-70B"
BLOCK = 16


def block_bytes() -> float:
    return kv_bytes_per_token(load_catalog().model(MODEL)) * BLOCK


def scenario(tmp_path: Path, preemption: str, swap_space: float | None) -> dict[str, Any]:
    # 16 blocks of 16 tokens. Two 96-token prompts decode together until each holds 128 tokens (8 blocks):
    # the next iteration needs 18 blocks, so the newer one is preempted holding 128 tokens (8 blocks).
    path = tmp_path / "requests.csv"
    path.write_text("arrival,prompt_tokens,output_tokens\n0,96,100\n0,96,100\n")
    paged: dict[str, Any] = {"block_size": BLOCK, "watermark": 0, "preemption": preemption,
                             "prefix_caching": False, "host_link": "10 GB/s"}
    if swap_space is not None:
        paged["swap_space"] = f"{swap_space:.0f}"
    service = {"name": "chat", "model": MODEL, "replicas": [{"accelerator": "H100", "tensor_parallel": 4, "count": 1}],
               "requests": {"source": "trace", "path": str(path)}, "paged_kv": paged,
               "kv_cache": f"{block_bytes() / BLOCK * 256:.0f}"}
    return {"name": "swap-space", "seed": 3,
            "cluster": {"node_pools": [{"name": "h100", "count": 1, "accelerator": "H100",
                                        "accelerators_per_node": 8}]},
            "workload": {"inference": {"services": [service]}}}


def run(data: dict[str, Any]) -> RunResult:
    return dcsim.run(scenario_from_dict(data, "test.yaml"))


def test_a_swap_that_fits_is_the_unbounded_swap(tmp_path: Path) -> None:
    unbounded = run(scenario(tmp_path, "swap", None))
    bounded = run(scenario(tmp_path, "swap", 8 * block_bytes()))  # exactly the preempted request's 8 blocks
    assert bounded.requests["end_s"].tolist() == unbounded.requests["end_s"].tolist()
    assert bounded.request_kv["swap_s"].tolist() == unbounded.request_kv["swap_s"].tolist()
    section = bounded.summary["inference"]["kv_cache"]
    assert (section["swaps_out"], section["swaps_in"], section["swaps_refused"]) == (1, 1, 0)
    assert section["swap_space_peak_blocks"] == 8
    assert "swaps_refused" not in unbounded.summary["inference"]["kv_cache"]  # unbounded runs keep their outputs


def test_a_swap_that_does_not_fit_is_recomputed(tmp_path: Path) -> None:
    recompute = run(scenario(tmp_path, "recompute", None))
    bounded = run(scenario(tmp_path, "swap", 8 * block_bytes() - 1))  # 7 whole blocks: one short
    assert bounded.requests["preemptions"].tolist() == [0, 1]
    assert bounded.requests["end_s"].tolist() == recompute.requests["end_s"].tolist()
    assert bounded.request_kv["prefill_computed"].tolist() == recompute.request_kv["prefill_computed"].tolist()
    assert bounded.request_kv["swap_s"].tolist() == [0.0, 0.0]
    section = bounded.summary["inference"]["kv_cache"]
    assert (section["swaps_out"], section["swaps_in"], section["swaps_refused"]) == (0, 0, 1)
    assert section["swap_space_peak_blocks"] == 0
    html = kv_cache_tables(bounded.summary)
    assert "swaps recomputed (swap space full)</td><td>1<" in html
    assert "swaps recomputed" not in kv_cache_tables(recompute.summary)


def test_session_turns_never_hold_more_swapped_blocks_than_the_bound(tmp_path: Path) -> None:
    requests = {"source": "synthetic", "count": 400, "arrival": {"process": "poisson", "rate": "20/s"},
                "prompt_tokens": {"distribution": "lognormal", "median": 600, "sigma": 0.6, "max": 6000},
                "output_tokens": {"distribution": "lognormal", "median": 200, "sigma": 0.6, "max": 1500},
                "sessions": 40}
    data = scenario(tmp_path, "swap", 200 * block_bytes())
    service = data["workload"]["inference"]["services"][0]
    service.update(requests=requests, max_batch=64, kv_cache=f"{block_bytes() / BLOCK * 8000:.0f}")
    service["paged_kv"].update(prefix_caching=True, watermark=0.02)
    result = run(data)
    section = result.summary["inference"]["kv_cache"]
    assert section["swaps_out"] > 0 and section["swaps_refused"] > 0  # the bound binds, and swaps still happen
    assert 0 < section["swap_space_peak_blocks"] <= 200
    assert section["swaps_in"] <= section["swaps_out"]
    assert result.summary["inference"]["completed"] == 400
    kv = result.request_kv
    assert (kv["prefill_cached"] + kv["prefill_computed"] == kv["prefill_requested"]).all()


@pytest.mark.parametrize(("paged", "message"), [
    ({"swap_space": "1 KB"}, r"paged_kv\.swap_space: 1000 bytes hold no KV block"),
    ({"swap_space": "4 GB", "preemption": "recompute"},
     r"paged_kv\.swap_space: .* needs preemption: swap, got recompute"),
    ({"swap_space": "-4 GB"}, r"swap_space"),
])
def test_bad_swap_space_fails_in_one_line(tmp_path: Path, paged: dict[str, Any], message: str) -> None:
    data = scenario(tmp_path, "swap", None)
    data["workload"]["inference"]["services"][0]["paged_kv"].update(paged)
    with pytest.raises(DcsimError, match=message):
        run(data)


def test_validate_and_run_exit_2_and_write_nothing(tmp_path: Path) -> None:
    data = scenario(tmp_path, "swap", 1000)
    assert_cli_refuses(tmp_path, data, "paged_kv.swap_space")
