"""Failures benchmark: wall time of whole runs (build, simulate, frames, summary), medians of repeats.

Prints figures; it is not a timed test and asserts nothing. Configurations (issue 14):
- llama3: scenarios/llama3_405b_failures.yaml, 54 days of one 16,384-GPU job plus 600 spot jobs on
  2,176 H100 nodes under the llama3-405b failure profile (about 420 interruptions); target < 10 s.
- philly, philly-failures: the Philly trace (scenarios/philly.yaml, 82k jobs) without and with the
  llama3-405b failure profile and Young/Daly checkpoints (1 min each); target: with failures < 1.5x without.

Usage:
    python benchmarks/bench_failures.py [--repeat N] [--only NAME]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import dcsim

ROOT = Path(__file__).resolve().parent.parent
LLAMA = ROOT / "scenarios" / "llama3_405b_failures.yaml"
PHILLY = ROOT / "scenarios" / "philly.yaml"
PHILLY_FAILURES = ["failures.profile=llama3-405b", "failures.detection=2min",
                   "workload.training.checkpoint.policy=young_daly", "workload.training.checkpoint.save_time=1min"]


def timed(run: Callable[[], dcsim.RunResult], repeat: int) -> tuple[list[float], dcsim.RunResult]:
    walls = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        walls.append(time.perf_counter() - started)
    assert result is not None
    return walls, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["llama3", "philly"])
    args = parser.parse_args()
    if args.only in (None, "llama3"):
        walls, result = timed(lambda: dcsim.run(LLAMA), args.repeat)
        failures = result.summary["failures"]
        big = result.jobs[result.jobs["accelerators"] == 16384].iloc[0]
        print(f"llama3: median {statistics.median(walls):.2f} s over {len(walls)} runs "
              f"({', '.join(f'{w:.2f}' for w in walls)}); component failures {failures['failures']}, "
              f"interruptions of the 16,384-GPU job {int(big['interruptions'])} (all jobs "
              f"{failures['job_interruptions']}), ETTR {failures['ettr_by_job_size'].get('4097+', float('nan')):.3f} "
              f"(fleet {failures['ettr']:.3f}), lost {failures['lost_accelerator_hours']:,.0f} accelerator-hours, "
              f"availability {failures['accelerator_availability']:.4f}, spares used {failures['spares_used']}")
    if args.only in (None, "philly"):
        if not PHILLY.exists():
            print("philly: scenarios/philly.yaml missing")
            return
        plain, _ = timed(lambda: dcsim.run(PHILLY), args.repeat)
        failing, result = timed(lambda: dcsim.run(PHILLY, overrides=PHILLY_FAILURES), args.repeat)
        failures = result.summary["failures"]
        ratio = statistics.median(failing) / statistics.median(plain)
        print(f"philly: without failures median {statistics.median(plain):.2f} s "
              f"({', '.join(f'{w:.2f}' for w in plain)}); with failures {statistics.median(failing):.2f} s "
              f"({', '.join(f'{w:.2f}' for w in failing)}); ratio {ratio:.2f} (target < 1.5); "
              f"failures {failures['failures']}, interruptions {failures['job_interruptions']}, "
              f"checkpoints {failures['checkpoints']}, ETTR {failures['ettr']:.3f}")


if __name__ == "__main__":
    main()
