"""Output folders dcsim writes (runs, comparisons, calibration reports): atomically, marked, never
destroying what dcsim did not write.

A folder is filled in a temporary sibling, then renamed into place. It holds a .dcsim-output marker
listing its files; dcsim replaces a folder only when it holds nothing else, so a user's own files are
never deleted. The hidden temporaries of killed runs are removed once their writer is gone. CSVs for
people quote text cells a spreadsheet would run as formulas.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from dcsim.errors import ResultError

MARKER = ".dcsim-output"  # JSON in every output folder: tool, version, kind, name, writer, files written
_OLD_STYLE = ("summary.json", "comparison_runs.csv")  # what folders of dcsim before the marker held
# Hidden siblings made while writing: .NAME.tmp-HOST-PID-RANDOM (being filled), .NAME.old-... (being replaced).
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[a-z0-9_]+$")
_OTHER_HOST_AGE_S = 3600.0  # a writer on another host (shared disk) cannot be asked whether it still runs
_REUSED_PID_AGE_S = 86400.0  # a live pid this old is taken to be another process that reused the number
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # cells spreadsheets would evaluate as formulas


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with text cells that start like a formula (=, +, -, @) prefixed by a single quote.

    Job, service, pool and tenant names come from users' files; a spreadsheet opening the CSV would run
    "=HYPERLINK(...)" as a formula. Only text cells change (negative numbers stay numbers); parquet keeps
    the exact values, so reloading is exact.
    """
    safe = frame
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        if not (series.dtype == object or isinstance(series.dtype, (pd.StringDtype, pd.CategoricalDtype))):
            continue
        try:
            risky = series.str.startswith(_FORMULA_START, na=False).to_numpy(dtype=bool)
        except (AttributeError, TypeError):  # an object column without text
            continue
        if risky.any():
            if safe is frame:
                safe = frame.copy()
            values = series.astype(object).to_numpy(copy=True)
            values[risky] = "'" + values[risky]
            safe.isetitem(position, values)
    if any(isinstance(c, str) and c.startswith(_FORMULA_START) for c in frame.columns):
        safe = safe.set_axis([f"'{c}" if isinstance(c, str) and c.startswith(_FORMULA_START) else c
                              for c in frame.columns], axis=1)
    return safe


def write_csv(frame: pd.DataFrame, path: Path, **options: Any) -> None:
    """Write a CSV for people: formula-like text cells quoted (see csv_safe), no index."""
    csv_safe(frame).to_csv(path, index=False, **options)


def check_output_folder(folder: Path) -> Path:
    """Refuse output paths whose replacement would destroy something dcsim did not write.

    A folder is replaced only when it is empty or holds dcsim's marker and nothing but the files the
    marker lists. The path is also tried (name length, permissions) so a run fails before simulating,
    not after. Returns the absolute path.
    """
    try:
        folder = folder.resolve()
        cwd = Path.cwd().resolve()
        if folder == cwd or folder in cwd.parents:
            raise ResultError(f"{folder}: refusing to write results over the current folder or one of its parents")
        existing = _check_lengths(folder)  # first: every look at a name too long fails
        if folder.is_symlink() or folder.exists():
            if folder.is_symlink() or not folder.is_dir():
                raise ResultError(f"{folder}: exists and is not a folder; choose another output path")
            if any(folder.iterdir()):
                _check_replaceable(folder)
        elif not existing.is_dir():
            raise ResultError(f"{folder}: {existing} is not a folder; choose another output path")
        # fail now, not after simulating, on a parent that cannot be written
        os.rmdir(tempfile.mkdtemp(prefix=_temporary_prefix(folder, "tmp"), dir=existing))
    except OSError as exc:
        raise ResultError(f"{folder}: cannot use as output folder: {exc.strerror or exc}") from None
    return folder


def _check_replaceable(folder: Path) -> None:
    marker = read_marker(folder)
    if marker is None:
        if any((folder / name).exists() for name in _OLD_STYLE):
            raise ResultError(f"{folder}: holds results without a {MARKER} marker (written by an older dcsim?); "
                              "dcsim replaces only folders it marked: remove it or choose another output path")
        raise ResultError(f"{folder}: folder is not empty and holds no dcsim results; choose another output path")
    foreign = _unlisted(folder, marker)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ResultError(f"{folder}: holds files dcsim did not write ({shown}); move them elsewhere "
                          "or choose another output path")


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The folder's dcsim marker, or None when it has none (or one dcsim did not write)."""
    path = folder / MARKER
    try:
        if path.is_symlink() or not path.is_file():
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "dcsim" else None


def _listed(marker: dict[str, Any]) -> set[str]:
    """The relative paths the marker says dcsim wrote (only plain relative paths inside the folder)."""
    files = marker.get("files")
    if not isinstance(files, list):
        return set()
    return {f for f in files if isinstance(f, str) and f and not Path(f).is_absolute() and ".." not in Path(f).parts}


def _entries(folder: Path) -> list[tuple[str, bool]]:
    """Every entry under `folder` as (relative posix path, is a real folder); links are not followed."""
    found = []
    for root, dirs, files in os.walk(folder):
        base = Path(root).relative_to(folder)
        for name in dirs:
            found.append(((base / name).as_posix(), not os.path.islink(os.path.join(root, name))))
        found += [((base / name).as_posix(), False) for name in files]
    return found


def _unlisted(folder: Path, marker: dict[str, Any]) -> list[str]:
    """Entries of `folder` its marker does not list (files or folders dcsim did not write), outermost only."""
    listed = _listed(marker) | {MARKER}
    parents = {parent.as_posix() for path in listed for parent in Path(path).parents} - {"."}
    foreign: list[str] = []
    for path, is_dir in _entries(folder):  # top-down: a foreign folder comes before what it holds
        if any(path.startswith(f"{outer}/") for outer in foreign):
            continue
        if (path not in parents) if is_dir else (path not in listed):
            foreign.append(path)
    return foreign


def _check_lengths(folder: Path) -> Path:
    """Refuse a name or path too long to create; return the folder's nearest existing ancestor."""
    existing = folder.parent
    while True:
        try:
            if existing.exists():
                break
        except OSError:  # a name too long on the way up
            pass
        existing = existing.parent
    name_max = _pathconf(existing, "PC_NAME_MAX", 255)
    for part in folder.relative_to(existing).parts:
        if len(os.fsencode(part)) > name_max:
            raise ResultError(f"{folder}: name {part[:40]}... is {len(os.fsencode(part))} bytes long; "
                              f"at most {name_max} allowed here; choose a shorter output path")
    path_max = _pathconf(existing, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(folder))) + 64 > path_max:  # room for frames/replica_timeseries.parquet
        raise ResultError(f"{folder}: path too long (at most about {path_max - 64} bytes); choose a shorter one")
    return existing


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError, AttributeError):  # no pathconf on Windows
        return default


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _temporary_prefix(folder: Path, kind: str) -> str:
    """.NAME.KIND-HOST-PID-: names whose writer can be asked later whether it still runs."""
    return f".{folder.name[:100]}.{kind}-{_host_tag()}-{os.getpid()}-"


def write_atomically(folder: Path, write: Callable[[Path], object], marker: dict[str, Any] | None = None) -> Path:
    """Fill a temporary sibling folder with `write`, then swap it into place; no half-written output.

    The folder gets a marker (MARKER) naming dcsim, `marker`'s fields (kind, name, version) and every file
    written, so a later run may replace exactly those files. Only an empty folder or one holding nothing but
    what its marker lists is ever replaced (see check_output_folder). Temporary folders that killed dcsim
    runs left in the same parent are removed first.
    """
    folder = check_output_folder(folder)
    version = getattr(sys.modules.get("dcsim"), "__version__", None)  # the package this module belongs to
    info = {"tool": "dcsim", "version": version, **(marker or {}), "host": socket.gethostname(), "pid": os.getpid()}
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder.parent)
        tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(folder, "tmp"), dir=folder.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; results are ordinary files
        (tmp / MARKER).write_text(json.dumps({**info, "files": None}))  # a killed run's folder is known as dcsim's
    except OSError as exc:
        raise ResultError(f"{folder}: cannot create output folder: {exc.strerror}") from None
    try:
        write(tmp)
        files = sorted(path for path, is_dir in _entries(tmp) if not is_dir and path != MARKER)
        written_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        (tmp / MARKER).write_text(json.dumps({**info, "written_at": written_at, "files": files}, indent=1) + "\n")
        check_output_folder(folder)  # again: files may have appeared in the old folder meanwhile
        _swap_into_place(tmp, folder)
    except OSError as exc:
        raise ResultError(f"{folder}: cannot write results: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _swap_into_place(tmp: Path, folder: Path) -> None:
    """Rename `tmp` to `folder`; a previous folder is moved aside, then only its listed files are deleted."""
    if not folder.exists():
        os.rename(tmp, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(folder, "old"), dir=folder.parent))
    os.rename(folder, old / folder.name)
    try:
        os.rename(tmp, folder)
    except OSError:
        os.rename(old / folder.name, folder)  # put the previous results back
        os.rmdir(old)
        raise
    kept = _remove_written(old / folder.name)
    if kept:
        raise ResultError(f"{folder}: results written; files that appeared in the previous folder while writing "
                          f"({', '.join(kept[:3])}) were kept in {old / folder.name}")
    os.rmdir(old)


def _remove_written(folder: Path) -> list[str]:
    """Delete the files `folder`'s marker lists, then the folders left empty; return what remains."""
    marker = read_marker(folder)
    for path in [*sorted(_listed(marker) if marker else set()), MARKER]:
        target = folder / path
        if target.is_symlink() or target.is_file():
            target.unlink()
    for root, _dirs, _files in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        with contextlib.suppress(OSError):  # not empty: holds something dcsim did not write
            os.rmdir(root)
    return [] if not folder.exists() else [path for path, _ in _entries(folder)]


def remove_stale_temporaries(parent: Path) -> list[Path]:
    """Delete the temporary folders that killed dcsim runs left in `parent`; return those removed.

    Only folders named like dcsim's (.NAME.tmp-HOST-PID-* or .NAME.old-...) whose writer is gone (its
    pid no longer runs on this host; an hour old when written from another host) and that hold nothing
    but dcsim's files: a partly written folder carrying the marker, or a previous result whose marker
    lists all it holds. Anything else is left alone.
    """
    removed: list[Path] = []
    try:
        candidates = [entry for entry in parent.iterdir() if _TEMPORARY.match(entry.name)]
    except OSError:
        return removed
    for entry in candidates:
        match = _TEMPORARY.match(entry.name)
        assert match is not None
        try:
            if entry.is_symlink() or not entry.is_dir() or not _writer_gone(entry, match["host"], int(match["pid"])):
                continue
            if match["kind"] == "tmp":  # being filled: empty, or carrying the marker from its first moment
                if any(entry.iterdir()) and read_marker(entry) is None:
                    continue
                shutil.rmtree(entry)
            else:
                inner = list(entry.iterdir())
                if len(inner) > 1 or (inner and (inner[0].is_symlink() or not inner[0].is_dir())):
                    continue
                if inner and (read_marker(inner[0]) is None or _remove_written(inner[0])):
                    continue
                os.rmdir(entry)
        except OSError:
            continue
        removed.append(entry)
    return removed


def _writer_gone(entry: Path, host: str, pid: int) -> bool:
    age = time.time() - entry.stat().st_mtime
    if host != _host_tag():
        return age > _OTHER_HOST_AGE_S
    if pid == os.getpid():
        return False
    if os.name != "posix":  # os.kill(pid, 0) would signal the process there
        return age > _REUSED_PID_AGE_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, another user's
        pass
    return age > _REUSED_PID_AGE_S
