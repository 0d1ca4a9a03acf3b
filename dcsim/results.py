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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dcsim.errors import ResultError

FRAME_NAMES = ("jobs", "timeseries")
INFERENCE_FRAMES = ("requests", "replicas", "replica_timeseries")  # present when the run served inference
NETWORK_FRAMES = ("links", "link_timeseries")  # present when the scenario has a network
STORAGE_FRAMES = ("storage_timeseries",)  # present when the scenario has storage tiers
OPTIONAL_FRAMES = {"inference": INFERENCE_FRAMES, "network": NETWORK_FRAMES, "storage": STORAGE_FRAMES}


@dataclass
class RunResult:
    scenario: dict[str, Any]
    seed: int
    version: str
    summary: dict[str, Any]
    jobs: pd.DataFrame
    timeseries: pd.DataFrame
    requests: pd.DataFrame | None = None
    replicas: pd.DataFrame | None = None
    replica_timeseries: pd.DataFrame | None = None
    links: pd.DataFrame | None = None
    link_timeseries: pd.DataFrame | None = None
    storage_timeseries: pd.DataFrame | None = None

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        frames = {"jobs": self.jobs, "timeseries": self.timeseries}
        for name in (name for names in OPTIONAL_FRAMES.values() for name in names):
            frame = getattr(self, name)
            if frame is not None:
                frames[name] = frame
        return frames

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
        folder = Path(folder)
        try:
            summary = json.loads((folder / "summary.json").read_text())
            scenario = yaml.safe_load((folder / "scenario.yaml").read_text())
            frames = {name: pd.read_parquet(folder / "frames" / f"{name}.parquet") for name in FRAME_NAMES}
            for section, names in OPTIONAL_FRAMES.items():  # keyed on the summary section they come with
                for name in names if section in summary else ():
                    frames[name] = pd.read_parquet(folder / "frames" / f"{name}.parquet")
        except FileNotFoundError as exc:
            raise ResultError(f"{folder}: not a dcsim results folder ({Path(exc.filename).name} missing)") from None
        return cls(scenario=scenario, seed=int(summary["seed"]), version=str(summary["dcsim_version"]),
                   summary=summary, jobs=frames["jobs"], timeseries=frames["timeseries"],
                   requests=frames.get("requests"), replicas=frames.get("replicas"),
                   replica_timeseries=frames.get("replica_timeseries"), links=frames.get("links"),
                   link_timeseries=frames.get("link_timeseries"),
                   storage_timeseries=frames.get("storage_timeseries"))


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
