"""RunResult: everything one run produced, saved to and loaded from a folder without re-running.

A folder holds summary.json, scenario.yaml (resolved, with the policies' parameters), jobs.csv,
timeseries.csv (and, when the scenario serves inference, requests.csv, replicas.csv and
replica_timeseries.csv; with a network, links.csv and link_timeseries.csv; with storage tiers,
storage_timeseries.csv) for people, and frames/*.parquet for exact reloading. Folders are written
atomically and marked as dcsim's (dcsim/output_folders.py), so a user's own files are never deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dcsim.errors import ResultError
from dcsim.output_folders import write_atomically, write_csv

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
        marker = {"kind": "run", "name": self.summary.get("scenario"), "seed": self.seed}
        return write_atomically(Path(folder), lambda tmp: self._write(tmp, extra_files), marker)

    def _write(self, folder: Path, extra_files: Callable[[Path], object] | None) -> None:
        (folder / "summary.json").write_text(summary_json(self.summary))
        (folder / "scenario.yaml").write_text(yaml.safe_dump(self.scenario, sort_keys=False))
        (folder / "frames").mkdir()
        for name, frame in self.frames.items():
            write_csv(frame, folder / f"{name}.csv")
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


# Output folders: dcsim replaces a folder only when it can prove it wrote every file in it.
