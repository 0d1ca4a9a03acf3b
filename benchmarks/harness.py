"""What every benchmark script shares: the machine line, where dcsim comes from, one timed run, and
running one configuration in a fresh interpreter (so imports and caches of one run never help the next).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                      if line.startswith("Model name")), "")
    except OSError:
        pass
    return (f"{platform.python_implementation()} {platform.python_version()}, nproc={os.cpu_count()}, "
            f"CPU: {model or platform.processor() or 'unknown'}, {platform.system()} {platform.release()}")


def precompile(package: Path) -> str:
    """Compile the package's bytecode ahead when this interpreter would not write it (PYTHONDONTWRITEBYTECODE,
    as on the project's shared machine), so that timed runs import cached bytecode the way an installed
    package does instead of compiling ~130 modules inside the timed region (about 0.2 s a run)."""
    if not sys.dont_write_bytecode:
        return ""
    import compileall

    compileall.compile_dir(str(package), quiet=1)
    return ", bytecode compiled ahead (PYTHONDONTWRITEBYTECODE is set)"


def dcsim_source() -> str:
    """Where the dcsim under test comes from: the checkout's commit (and whether dcsim/ is modified), and
    whether its bytecode had to be compiled ahead (see precompile)."""
    import importlib.util

    spec = importlib.util.find_spec("dcsim")
    where = Path(spec.origin).resolve().parent if spec and spec.origin else None
    if where is None:
        return "dcsim: not importable"
    text = f"dcsim from {where}{precompile(where)}"
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "--no-optional-locks", "-C", str(where), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True).stdout.strip()
        text += f" (git {commit}{', with uncommitted changes in dcsim/' if dirty else ''})"
    except (OSError, subprocess.CalledProcessError):
        text += " (not a git checkout)"
    return text


@dataclass(frozen=True)
class TimedRun:
    result: Any  # dcsim.RunResult
    total_s: float  # wall seconds of dcsim.run
    cpu_s: float  # CPU seconds of this process during dcsim.run
    peak_mib: float  # peak resident memory of this process so far


def timed_run(scenario: Any) -> TimedRun:
    """dcsim.run on an already loaded scenario, timed in wall and CPU seconds."""
    import resource

    import dcsim

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    result = dcsim.run(scenario)
    total_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    return TimedRun(result, total_s, cpu_s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def spawn(script: str, key: str, timeout: float) -> dict[str, Any]:
    """Run `script --one key --json` in a fresh interpreter: its JSON record plus `process_s`, or
    {'key', 'error'} when it fails (with 'timed_out' and 'timeout_s' when it ran past `timeout` seconds)."""
    cmd = [sys.executable, str(Path(script).resolve()), "--one", key, "--json"]
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"key": key, "error": f"timed out after {timeout:g} s", "timed_out": True, "timeout_s": timeout}
    if done.returncode != 0:
        return {"key": key, "error": ((done.stderr or done.stdout).strip().splitlines() or ["failed"])[-1]}
    record: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    record["process_s"] = time.perf_counter() - started
    return record
