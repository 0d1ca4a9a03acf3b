"""Write scenarios/data/llama3_405b_jobs.csv: one 16,384-GPU pre-training job and a background of smaller jobs.

The big job is sized as the Llama 3 405B pre-training snapshot (16,384 H100s for 54 days; Llama Team,
arXiv:2407.21783); it is given 60 days of work so it is still running at the 54-day horizon. The
background is synthetic (fixed seed): 600 jobs of 8 to 256 GPUs arriving as a Poisson process over
54 days, lognormal run times (median 6 h). Run: python tools/make_llama3_trace.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DAY = 86400.0
OUT = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "llama3_405b_jobs.csv"


def main() -> None:
    rng = np.random.default_rng(405)
    submits = np.sort(rng.uniform(0.0, 54 * DAY, 600))
    sizes = rng.choice([8, 16, 32, 64, 128, 256], size=600, p=[0.35, 0.25, 0.15, 0.12, 0.08, 0.05])
    durations = rng.lognormal(np.log(6 * 3600.0), 1.0, 600).clip(600.0, 7 * DAY)
    rows = ["submit,duration,accelerators,priority,name", f"0,{60 * DAY:.0f},16384,production,llama3-405b"]
    rows += [f"{s:.0f},{d:.0f},{n},spot,background-{i}"
             for i, (s, d, n) in enumerate(zip(submits, durations, sizes, strict=True))]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(rows) - 1} jobs)")


if __name__ == "__main__":
    main()
