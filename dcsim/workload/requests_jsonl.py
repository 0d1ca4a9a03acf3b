"""Read a JSON Lines request trace into string cells (as the CSV reader does) and prefix-hash lists.

Each line is one JSON object; scalar fields become the cells the request-trace checks read, so rows
with a missing or bad value are counted per reason like CSV rows (line numbers are the file's). A
line that is not a JSON object, or a hash list that is not integers or strings, stops the read with
one line naming the file, line and field: such a file is not the format the scenario says it is.

Prefix hashes are stored as int64 arrays (compact, hashing-free in the engine): integer hashes as they
are, or, as soon as the trace has a string hash, dense ids for all (see HashIds). CSV traces may
carry hashes too, as a JSON list or `a|b|c` in one cell.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dcsim.errors import TraceError, clip, excerpt

EXPECTED = "expected JSON Lines: one JSON object per line"


class HashIds:
    """Int ids for hash values (ints or strings) of one trace: integers as they are while the trace has
    only integers (the common case, read without a Python loop per hash), else dense ids 0, 1, ... in
    order of first appearance for every value (an integer and a string of the same digits differ)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[bool, int | str], int] = {}
        self._raw: list[tuple[int, list[object]]] = []  # (list index, values) kept until strings appear
        self.lists: list[np.ndarray | None] = []
        self._dense = False

    def add(self, values: object, where: str) -> None:
        """Append one request's hash list (or None when it has none)."""
        if values is None:
            self.lists.append(None)
            return
        if not isinstance(values, list):
            raise TraceError(f"{where}: expected a list of integers or strings, got {excerpt(str(values))}")
        if not self._dense:
            array = np.array(values) if values else np.empty(0, dtype=np.int64)
            if array.dtype.kind == "i" and array.ndim == 1:  # integers only (bools and floats are other kinds)
                self.lists.append(array.astype(np.int64, copy=False))
                self._raw.append((len(self.lists) - 1, values))
                return
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise TraceError(f"{where}: hash {i} is {excerpt(json.dumps(value))}; "
                                 "expected a list of integers or strings")
        if not self._dense:  # from now on every list gets dense ids, earlier integer lists too
            self._dense = True
            for index, raw in self._raw:
                self.lists[index] = self._map(raw)
            self._raw = []
        self.lists.append(self._map(values))

    def _map(self, values: list[object]) -> np.ndarray:
        ids = self._ids
        out = np.empty(len(values), dtype=np.int64)
        for i, value in enumerate(values):
            key = (isinstance(value, str), value)
            found = ids.get(key)  # type: ignore[arg-type]
            if found is None:
                found = ids[key] = len(ids)  # type: ignore[index]
            out[i] = found
        return out

    def add_cell(self, cell: str, where: str) -> None:
        """A CSV cell: a JSON list, or values separated by |; numbers are read as integers."""
        text = cell.strip()
        if not text:
            self.lists.append(np.empty(0, dtype=np.int64))
            return
        if text.startswith("["):
            try:
                values = json.loads(text)
            except json.JSONDecodeError:
                raise TraceError(f"{where}: {excerpt(text)} is not a JSON list; "
                                 "expected a list of integers or strings") from None
        else:
            values = [int(part) if part.strip().lstrip("-").isdigit() else part.strip() for part in text.split("|")]
        self.add(values, where)


def read_jsonl(path: Path, fields: Sequence[str], hashes: str | None,
               nrows: int | None = None) -> tuple[pd.DataFrame, list[np.ndarray | None]]:
    """Cells of `fields` ("" when absent) per line, index = line - 2 (so check_rows' line = index + 2),
    and each line's hash ids (None when the line has no `hashes` field)."""
    if not path.exists():
        raise TraceError(f"{path}: cannot read trace file: no such file ({EXPECTED})")
    if not path.is_file():
        raise TraceError(f"{path}: cannot read trace file: not a regular file ({EXPECTED})")
    if nrows is None:
        fast = _read_with_arrow(path, fields, hashes)
        if fast is not None:
            return fast
    columns: dict[str, list[str]] = {name: [] for name in fields}
    count = 0
    seen: set[str] = set()
    ids = HashIds()
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read trace file: {exc.strerror} ({EXPECTED})") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if nrows is not None and number > max(nrows, 1):
                    break
                text = line.strip()
                row: dict[str, object] = {}
                if text:
                    try:
                        parsed = json.loads(text)
                    except json.JSONDecodeError as exc:
                        raise TraceError(f"{path}: line {number}: not JSON ({exc.msg}); {EXPECTED}") from None
                    if not isinstance(parsed, dict):
                        raise TraceError(f"{path}: line {number}: a JSON {type(parsed).__name__}, not an object; "
                                         f"{EXPECTED}")
                    row = parsed
                    seen.update(row)
                for name in fields:
                    value = row.get(name)
                    columns[name].append("" if value is None or isinstance(value, dict | list) else str(value))
                if hashes is not None:
                    ids.add(row.get(hashes), f"{path}: line {number}: field {hashes!r}")
                count += 1
        except UnicodeDecodeError:
            raise TraceError(f"{path}: cannot read trace file: not UTF-8 text ({EXPECTED})") from None
    if count:
        missing = [name for name in (*fields, *([hashes] if hashes else [])) if name not in seen]
        if missing:
            raise TraceError(f"{path}: no line has field {excerpt(missing[0])} (fields present: "
                             f"{clip(', '.join(sorted(seen)), 200)}); set requests.columns")
    frame = pd.DataFrame(columns, index=pd.RangeIndex(-1, count - 1), dtype=str)
    return frame, ids.lists if hashes is not None else [None] * count


def _read_with_arrow(path: Path, fields: Sequence[str],
                     hashes: str | None) -> tuple[pd.DataFrame, list[np.ndarray | None]] | None:
    """The same result as the line-by-line reader for a well-formed file, read by pyarrow's JSON reader
    (several times faster); None for anything unusual (a parse error, blank lines, a nested or missing
    field, hashes that are not all integers), which the line-by-line reader then reports exactly."""
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        table = pj.read_json(path)
        with path.open("rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            handle.seek(-1, 2)
            if handle.read(1) != b"\n":
                lines += 1  # a last line without a newline
    except (pa.ArrowException, OSError, ValueError):
        return None
    count = table.num_rows
    if count != lines or any(name not in table.column_names for name in (*fields, *([hashes] if hashes else []))):
        return None
    columns: dict[str, list[str]] = {}
    for name in fields:
        column = table.column(name)
        if pa.types.is_nested(column.type):
            return None
        columns[name] = ["" if value is None else str(value) for value in column.to_pylist()]
    lists: list[np.ndarray | None] = [None] * count
    if hashes is not None:
        array = table.column(hashes).combine_chunks()
        if not pa.types.is_list(array.type) or array.type.value_type != pa.int64() or array.values.null_count:
            return None
        offsets = array.offsets.to_numpy()
        values = array.values.to_numpy()
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        lists = [values[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(count)]
    frame = pd.DataFrame(columns, index=pd.RangeIndex(-1, count - 1), dtype=str)
    return frame, lists
