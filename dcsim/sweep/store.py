"""A sweep's output folder: finished runs appended as they finish, so an interrupted sweep resumes.

Layout: `.dcsim-output` (marker, kind "sweep", listing every file dcsim wrote here), `runs.jsonl`
(one JSON record per finished run, appended and flushed as each finishes, never rewritten), and the
tables, charts and page assembled from the records at the end (each written to a listed `.partial`
name, then renamed). A folder holding anything the marker does not list is refused, so nothing dcsim
did not write is ever touched. One sweep at a time writes a folder (a lock on runs.jsonl).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from dcsim.errors import ResultError
from dcsim.output_folders import MARKER, check_output_folder, read_marker
from dcsim.sweep.task import Record
from dcsim.version import __version__

RUNS = "runs.jsonl"


class MemoryStore:
    """Records kept in memory only (the Python API without an output folder)."""

    folder: Path | None = None

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.dropped_lines = 0

    def append(self, record: Record) -> None:
        self.records[record["key"]] = record

    def close(self) -> None:
        pass


class FolderStore(MemoryStore):
    """Records in `folder`/runs.jsonl; opening reads what earlier (maybe killed) runs stored."""

    def __init__(self, folder: Path, kind: str, name: str) -> None:
        super().__init__()
        self.kind = kind
        marker = read_marker(folder) if folder.is_dir() else None
        if marker is not None and marker.get("kind") != kind:
            raise ResultError(f"{folder}: holds dcsim {marker.get('kind')} results, not a {kind}; "
                              "choose another output path")
        self.folder = check_output_folder(folder)  # refuses a folder holding anything dcsim did not write
        self._files = set(_listed(marker)) | {RUNS, f"{MARKER}.partial"}  # the marker's own temporary too
        self._info = {"tool": "dcsim", "version": __version__, "kind": kind, "name": name}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.write_marker(self._files)  # before runs.jsonl exists: it is always a listed file
            self._handle: IO[bytes] = open(self.folder / RUNS, "a+b")  # noqa: SIM115 (held open while running)
        except OSError as exc:
            raise ResultError(f"{self.folder}: cannot write sweep results: {exc.strerror or exc}") from None
        self._lock()
        self._remove_partials()
        self._read()

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._handle.close()
            raise ResultError(f"{self.folder}: another dcsim {self.kind} is writing this folder; "
                              "wait for it or choose another output path") from None

    def _read(self) -> None:
        """Load stored records; a last line cut short by a kill is removed (it is this file's own tail)."""
        self._handle.seek(0)
        data = self._handle.read()
        lines = data.split(b"\n")
        complete = len(data) - len(lines[-1])  # bytes up to the last newline
        if lines[-1]:
            self._handle.truncate(complete)
            self.dropped_lines += 1
        for line in lines[:-1]:
            try:
                record = json.loads(line)
                key = record["key"]
            except (ValueError, KeyError, TypeError):
                self.dropped_lines += 1  # kept in the file, not used
                continue
            self.records[key] = record  # a later record of the same key (a retry) wins

    def append(self, record: Record) -> None:
        """Store `record` durably before the next one is taken."""
        line = json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n"
        try:
            self._handle.seek(0, os.SEEK_END)
            self._handle.write(line.encode())
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise ResultError(f"{self.folder}/{RUNS}: cannot append a finished run: {exc.strerror or exc}") from None
        super().append(record)

    def write_files(self, names: Iterable[str], write: Callable[[Path], None]) -> None:
        """Write output files: listed in the marker first, each filled under `.partial` then renamed."""
        assert self.folder is not None
        names = list(names)
        planned = self._files | set(names) | {f"{name}.partial" for name in names}
        self.write_marker(planned)
        try:
            write(self.folder)
            self._files |= set(names)
        except OSError as exc:
            raise ResultError(f"{self.folder}: cannot write sweep results: {exc.strerror or exc}") from None
        finally:
            self._remove_partials()
            self.write_marker(self._files)

    def write_marker(self, files: Iterable[str]) -> None:
        assert self.folder is not None
        written_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        info = {**self._info, "host": socket.gethostname(), "pid": os.getpid(), "written_at": written_at,
                "files": sorted(files)}
        temporary = self.folder / f"{MARKER}.partial"
        temporary.write_text(json.dumps(info, indent=1) + "\n")
        os.replace(temporary, self.folder / MARKER)

    def _remove_partials(self) -> None:
        assert self.folder is not None
        for name in sorted(self._files_listed()):
            path = self.folder / name
            if name.endswith(".partial") and (path.is_file() and not path.is_symlink()):
                path.unlink()

    def _files_listed(self) -> set[str]:
        assert self.folder is not None
        return set(_listed(read_marker(self.folder)))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()


def _listed(marker: dict[str, Any] | None) -> list[str]:
    files = (marker or {}).get("files")
    if not isinstance(files, list):
        return []
    return [f for f in files if isinstance(f, str) and f and not Path(f).is_absolute() and ".." not in Path(f).parts]


def replace_file(folder: Path, name: str, write: Callable[[Path], object]) -> None:
    """Write `folder`/`name` through `name`.partial, so a reader never sees half a file."""
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{name}.partial"
    write(temporary)
    os.replace(temporary, target)
