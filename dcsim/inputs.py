"""Read user input files safely: bounded regular files, UTF-8 text, and a strict YAML loader.

Scenario files, `--set` values and calibration overlays all go through here, so a hostile or broken
file (a device or FIFO, a huge file, UTF-16 bytes, an alias bomb, 1,000-deep nesting, a key given
twice) is refused with one line instead of hanging, exhausting memory or printing a traceback.
YAML floats follow YAML 1.2 (`2e-3` is a number, not a string); everything else is YAML 1.1 as
PyYAML's safe loader reads it.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from dcsim.errors import DcsimError, clip, excerpt

MAX_FILE_BYTES = 64 * 2**20  # far above any scenario or overlay; refuses /dev/zero-like inputs quickly
MAX_DEPTH = 64  # scenarios nest about 8 levels deep
MAX_ALIAS_NODES = 10_000  # nodes that aliases may add by repeating anchored content


class InputError(DcsimError):
    """A file or value that cannot be read; the caller prefixes the file or option it came from."""


def read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes; InputError (one line) otherwise."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError("file not found") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError("not a regular file (a folder, device or pipe cannot be read as input)")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)  # a size reported as 0 (e.g. /proc) may still be large
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise InputError(f"file is larger than {limit // 2**20} MiB; input files are limited to that size")
    return decode_utf8(data)


def decode_utf8(data: bytes) -> str:
    """UTF-8 text (a leading byte-order mark is dropped); InputError naming the first bad byte otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1].hex()
        hint = " (UTF-16?)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise InputError(f"not UTF-8 text{hint}: byte 0x{bad} at offset {exc.start}; save the file as UTF-8") \
            from None


def load_yaml(text: str) -> Any:
    """One YAML document with the strict loader; InputError `line L, column C: problem` otherwise."""
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{where}invalid YAML: {clip(problem, 200)}") from None
    except RecursionError:
        raise InputError(f"invalid YAML: nested more than {MAX_DEPTH} levels deep") from None


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that limits nesting and alias expansion, refuses duplicate keys, reads 1e-3 as a float."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> nodes it stands for once aliases are expanded
        self._alias_nodes = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                if id(target) not in self._sizes:
                    raise ComposerError(None, None, f"alias *{clip(event.anchor, 40)} refers to the node that "
                                        "contains it", event.start_mark)
                self._alias_nodes += self._sizes[id(target)]
                if self._alias_nodes > MAX_ALIAS_NODES:
                    raise ComposerError(None, None, f"aliases expand to more than {MAX_ALIAS_NODES} nodes",
                                        event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                    self.peek_event().start_mark)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
        return node

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` may be overridden by the keys beside it
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: the base class reports it
                if first is not None:
                    raise ConstructorError(None, None, f"duplicate key {excerpt(key)} (first given on line {first})",
                                           key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def _children(node: Node | None) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


# YAML 1.2 floats: an exponent alone makes a float (`2e-3`, `1e6`), which YAML 1.1 reads as a string.
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)
