"""RunResult: everything one run produced, saved to and loaded from a folder without re-running.

A folder holds summary.json, scenario.yaml (resolved, with the policies' parameters), jobs.csv,
timeseries.csv (and, when the scenario serves inference, requests.csv, replicas.csv and
replica_timeseries.csv; with a network, links.csv and link_timeseries.csv; with storage tiers,
storage_timeseries.csv) for people, and frames/*.parquet for exact reloading. Folders are written
atomically: into a temporary sibling, then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dcsim.errors import ResultError

CORE_FRAMES = ("jobs", "timeseries")  # every run has these; subsystems add others (dcsim/subsystems.py)


class RunResult:
    """One run: the resolved scenario, seed, version, summary and its frames by name.

    `jobs` and `timeseries` are always present; a subsystem's frames (requests, links, ...) read as
    attributes too, and as None when the run has no such frame, so reporting can ask for any of them.
    """

    def __init__(self, *, scenario: dict[str, Any], seed: int, version: str, summary: dict[str, Any],
                 jobs: pd.DataFrame, timeseries: pd.DataFrame, **frames: pd.DataFrame | None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.version = version
        self.summary = summary
        self.frames: dict[str, pd.DataFrame] = {"jobs": jobs, "timeseries": timeseries}
        self.frames.update({name: frame for name, frame in frames.items() if frame is not None})

    @property
    def jobs(self) -> pd.DataFrame:
        return self.frames["jobs"]

    @property
    def timeseries(self) -> pd.DataFrame:
        return self.frames["timeseries"]

    def replace(self, **changes: Any) -> RunResult:
        """A copy with some fields or frames changed (frames shared, not copied)."""
        fields = {"scenario": self.scenario, "seed": self.seed, "version": self.version, "summary": self.summary,
                  **self.frames}
        return RunResult(**{**fields, **changes})

    def __getattr__(self, name: str) -> pd.DataFrame | None:
        if name.startswith("_") or name == "frames":  # not a frame: keep copy and pickle protocols intact
            raise AttributeError(name)
        return self.frames.get(name)

    def save(self, folder: str | Path, extra_files: Callable[[Path], object] | None = None) -> Path:
        """Write the result (and whatever `extra_files` adds, e.g. charts) atomically to `folder`."""
        return write_atomically(Path(folder), lambda tmp: self._write(tmp, extra_files))

    def _write(self, folder: Path, extra_files: Callable[[Path], object] | None) -> None:
        (folder / "summary.json").write_text(summary_json(self.summary))
        (folder / "scenario.yaml").write_text(yaml.safe_dump(self.scenario, sort_keys=False))
        (folder / "frames").mkdir()
        for name, frame in self.frames.items():
            frame.to_csv(folder / f"{name}.csv", index=False)
            frame.to_parquet(folder / "frames" / f"{name}.parquet", index=False)
        if extra_files is not None:
            extra_files(folder)

    @classmethod
    def load(cls, folder: str | Path) -> RunResult:
        """Read a results folder back: every frame saved under frames/, exactly (parquet)."""
        folder = Path(folder)
        try:
            summary = json.loads((folder / "summary.json").read_text())
            scenario = yaml.safe_load((folder / "scenario.yaml").read_text())
            names = [*CORE_FRAMES, *sorted(p.stem for p in (folder / "frames").glob("*.parquet")
                                           if p.stem not in CORE_FRAMES)]
            frames = {name: pd.read_parquet(folder / "frames" / f"{name}.parquet") for name in names}
        except FileNotFoundError as exc:
            raise ResultError(f"{folder}: not a dcsim results folder ({Path(exc.filename).name} missing)") from None
        return cls(scenario=scenario, seed=int(summary["seed"]), version=str(summary["dcsim_version"]),
                   summary=summary, **frames)


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=False, allow_nan=False) + "\n"


# Files that mark a folder as replaceable output of dcsim (a run or a comparison).
_OUTPUT_MARKERS = ("summary.json", "comparison_runs.csv")


def check_output_folder(folder: Path) -> Path:
    """Refuse output paths whose replacement would destroy something that is not dcsim output."""
    folder = folder.resolve()
    cwd = Path.cwd().resolve()
    if folder == cwd or folder in cwd.parents:
        raise ResultError(f"{folder}: refusing to write results over the current folder or one of its parents")
    if folder.exists():
        if not folder.is_dir():
            raise ResultError(f"{folder}: exists and is not a folder; choose another output path")
        if any(folder.iterdir()) and not any((folder / marker).is_file() for marker in _OUTPUT_MARKERS):
            raise ResultError(f"{folder}: folder is not empty and holds no dcsim results; choose another output path")
    return folder


def write_atomically(folder: Path, write: Callable[[Path], object]) -> Path:
    """Fill a temporary sibling folder with `write`, then swap it into place; no half-written output.

    Only an empty folder or an earlier dcsim result is ever replaced (see check_output_folder).
    """
    folder = check_output_folder(folder)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; results are ordinary files
    except OSError as exc:
        raise ResultError(f"{folder}: cannot create output folder: {exc.strerror}") from None
    try:
        write(tmp)
        _swap_into_place(tmp, folder)
    except OSError as exc:
        raise ResultError(f"{folder}: cannot write results: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _swap_into_place(tmp: Path, folder: Path) -> None:
    if not folder.exists():
        os.rename(tmp, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    try:
        os.rename(folder, old / folder.name)
        try:
            os.rename(tmp, folder)
        except OSError:
            os.rename(old / folder.name, folder)  # put the previous results back
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
