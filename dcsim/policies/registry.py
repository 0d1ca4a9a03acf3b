"""Register policy classes by family and name; look them up, build them, list them.

Third-party policies plug in through the `dcsim.policies` entry-point group: each entry point
loads a module or class whose import registers classes with `@register`.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from dcsim.errors import PolicyError

FAMILIES = ("scheduler", "placement", "replica_scheduler", "balancer", "autoscaler", "power")
_REGISTRY: dict[str, dict[str, type]] = {family: {} for family in FAMILIES}
_entry_points_loaded = False

T = TypeVar("T", bound=type)


def register(family: str, name: str) -> Callable[[T], T]:
    """Class decorator: make a policy available under `name` in `family`."""
    if family not in _REGISTRY:
        raise PolicyError(f"unknown policy family {family!r} (known: {', '.join(FAMILIES)})")

    def decorate(cls: T) -> T:
        existing = _REGISTRY[family].get(name)
        if existing is not None and existing is not cls:
            raise PolicyError(f"{family} policy {name!r} is already registered by {existing.__module__}")
        for param in inspect.signature(cls).parameters.values():
            if param.name != "self" and param.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise PolicyError(f"{cls.__name__}: constructor parameter {param.name!r} must be keyword-only")
        cls.family = family  # type: ignore[attr-defined]
        cls.name = name  # type: ignore[attr-defined]
        _REGISTRY[family][name] = cls
        return cls

    return decorate


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in entry_points(group="dcsim.policies"):
        try:
            entry.load()
        except Exception as exc:  # a broken plug-in must not hide the built-in policies
            raise PolicyError(f"policy plug-in {entry.name!r} ({entry.value}) failed to load: {exc}") from exc


def names(family: str) -> list[str]:
    # The built-ins are registered already: importing this module ran dcsim/policies/__init__.py first.
    _load_entry_points()
    return sorted(_REGISTRY[family])


def get_class(family: str, name: str) -> type:
    known = names(family)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise PolicyError(f"unknown {family} policy {name!r}{hint} (choices: {', '.join(known)})")
    return _REGISTRY[family][name]


def constructor_params(cls: type) -> dict[str, Any]:
    """Keyword-only constructor parameters and their defaults (inspect.Parameter.empty if none)."""
    signature = inspect.signature(cls)
    return {p.name: p.default for p in signature.parameters.values() if p.name != "self"}


def build(family: str, name: str, params: dict[str, Any] | None = None) -> Any:
    """Instantiate a registered policy; bad parameter names or values raise PolicyError."""
    cls = get_class(family, name)
    params = dict(params or {})
    accepted = constructor_params(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        choices = ", ".join(accepted) or "none"
        raise PolicyError(f"{family} policy {name!r}: unknown parameter {unknown[0]!r} (parameters: {choices})")
    _check_types(cls, family, name, params)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{family} policy {name!r}: {exc}") from None


def _check_types(cls: type, family: str, name: str, params: dict[str, Any]) -> None:
    """Parameters must match the constructor's annotations exactly (no 1.5 or true for an int)."""
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except (NameError, TypeError):  # a plug-in whose annotations cannot be resolved: no type check
        return
    for param, value in params.items():
        hint = hints.get(param)
        if hint is None:
            continue
        try:
            TypeAdapter(hint).validate_python(value, strict=True)
        except ValidationError:
            expected = getattr(hint, "__name__", str(hint))
            raise PolicyError(f"{family} policy {name!r}: parameter {param!r} expects {expected}, "
                              f"got {value!r}") from None


def describe(family: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, first docstring line, {param: default}) for every policy of a family."""
    rows = []
    for name in names(family):
        cls = _REGISTRY[family][name]
        doc = (inspect.getdoc(cls) or "").splitlines()
        defaults = {k: (None if v is inspect.Parameter.empty else v) for k, v in constructor_params(cls).items()}
        rows.append((name, doc[0] if doc else "", defaults))
    return rows
