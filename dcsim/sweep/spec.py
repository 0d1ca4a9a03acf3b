"""What a sweep varies: grids, zipped lists and random samples of scenario fields, from the command
line or a sweep YAML file, expanded to an ordered list of points.

A point is a mapping dotted.key -> value. Grid keys give their product; zipped keys advance together
(one axis); random keys are sampled jointly `samples` times (one axis). The axes then give their product,
grid first. Values are parsed with the strict YAML rules of scenario files, so `2h`, `[1, 2]` and
`H100` mean what they mean there. Sampling uses its own seed, so a sweep's points never change between
reruns (which is what lets an interrupted sweep resume).
"""

from __future__ import annotations

import itertools
import random as random_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcsim.errors import DcsimError, excerpt
from dcsim.inputs import InputError, load_yaml, read_text

MAX_POINTS = 100_000
Point = dict[str, Any]


@dataclass(frozen=True)
class RandomRange:
    """A closed range sampled uniformly: integers when both ends are integers, floats otherwise."""

    low: float
    high: float

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def draw(self, rng: random_module.Random) -> float:
        if self.integer:
            return rng.randint(int(self.low), int(self.high))
        return rng.uniform(self.low, self.high)


@dataclass
class SweepSpec:
    grid: dict[str, list[Any]] = field(default_factory=dict)
    zipped: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, RandomRange] = field(default_factory=dict)
    samples: int = 0
    sample_seed: int = 0
    seeds: int | None = None  # from a sweep file; the command line's --seeds wins

    @property
    def keys(self) -> list[str]:
        return [*self.grid, *self.zipped, *self.random]

    def points(self) -> list[Point]:
        """Every point, in a fixed order: the product of the grid axes, the zipped axis, the random axis."""
        axes: list[list[Point]] = [[{key: value} for value in values] for key, values in self.grid.items()]
        if self.zipped:
            lengths = {key: len(values) for key, values in self.zipped.items()}
            axes.append([{key: values[i] for key, values in self.zipped.items()}
                         for i in range(next(iter(lengths.values())))])
        if self.random:
            rng = random_module.Random(self.sample_seed)
            axes.append([{key: r.draw(rng) for key, r in self.random.items()} for _ in range(self.samples)])
        points = [dict(item for part in combo for item in part.items()) for combo in itertools.product(*axes)]
        return points if axes else []

    def check(self) -> None:
        """Refuse empty axes, repeated keys, unequal zipped lists, random keys without samples."""
        if not self.keys:
            raise DcsimError("sweep: nothing to vary; give --grid, --zip or --random (or a sweep file)")
        seen: set[str] = set()
        for key in self.keys:
            if key in seen:
                raise DcsimError(f"sweep: key {key!r} is varied more than once")
            seen.add(key)
            if key == "seed" or key.startswith("seed."):
                raise DcsimError("sweep: the seed is not a sweep key; use --seeds N (common random numbers)")
        for kind, axis in (("--grid", self.grid), ("--zip", self.zipped)):
            for key, values in axis.items():
                if not values:
                    raise DcsimError(f"sweep: {kind} {key}: expected at least one value, got none")
        lengths = {key: len(values) for key, values in self.zipped.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{key} has {n}" for key, n in lengths.items())
            raise DcsimError(f"sweep: --zip lists must have the same length; {shown}")
        if self.random and self.samples < 1:
            raise DcsimError(f"sweep: --random needs --samples N with N >= 1, got {self.samples}")
        if self.samples and not self.random:
            raise DcsimError("sweep: --samples is given without any --random range")
        count = 1
        for values in self.grid.values():
            count *= len(values)
        count *= next(iter(lengths.values()), 1) * (self.samples if self.random else 1)
        if count > MAX_POINTS:
            raise DcsimError(f"sweep: {count} points; at most {MAX_POINTS} allowed")


def split_values(text: str) -> list[str]:
    """Split "a,b,[1, 2],{x: 1}" at the commas outside brackets, braces and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _key_and_text(option: str, item: str) -> tuple[str, str]:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise DcsimError(f"{option} {excerpt(item)}: expected dotted.key=VALUES")
    return key.strip(), text


def _value(option: str, key: str, text: str) -> Any:
    try:
        return load_yaml(text)
    except InputError as exc:
        raise DcsimError(f"{option} {key}: value {excerpt(text)}: {exc}") from None


def parse_list(option: str, item: str) -> tuple[str, list[Any]]:
    """`key=v1,v2,v3` -> (key, [v1, v2, v3]); an empty list or an empty value is refused."""
    key, text = _key_and_text(option, item)
    if not text.strip():
        raise DcsimError(f"{option} {key}: expected at least one value, got none")
    values = []
    for part in split_values(text):
        if not part:
            raise DcsimError(f"{option} {key}: empty value in {excerpt(text)}")
        values.append(_value(option, key, part))
    return key, values


def parse_range(option: str, item: str) -> tuple[str, RandomRange]:
    """`key=LOW..HIGH` -> a RandomRange; both ends numbers, LOW <= HIGH."""
    key, text = _key_and_text(option, item)
    low_text, sep, high_text = text.partition("..")
    if not sep:
        raise DcsimError(f"{option} {key}: expected LOW..HIGH, got {excerpt(text)}")
    return key, _range(option, key, _value(option, key, low_text), _value(option, key, high_text))


def _range(where: str, key: str, low: Any, high: Any) -> RandomRange:
    for end in (low, high):
        if isinstance(end, bool) or not isinstance(end, int | float):
            raise DcsimError(f"{where} {key}: expected numbers LOW..HIGH, got {excerpt(end)}")
    if low > high:
        raise DcsimError(f"{where} {key}: LOW must not exceed HIGH, got {low}..{high}")
    return RandomRange(low, high)


def from_options(grid: Iterable[str] = (), zipped: Iterable[str] = (), ranges: Iterable[str] = (),
                 samples: int = 0, sample_seed: int = 0, base: SweepSpec | None = None) -> SweepSpec:
    """The spec the command-line options give, added to `base` (a sweep file's spec) when given."""
    spec = base or SweepSpec()
    for option, items, target in (("--grid", grid, spec.grid), ("--zip", zipped, spec.zipped)):
        for item in items:
            key, values = parse_list(option, item)
            if key in spec.keys:
                raise DcsimError(f"sweep: key {key!r} is varied more than once")
            target[key] = values
    for item in ranges:
        key, value = parse_range("--random", item)
        if key in spec.keys:
            raise DcsimError(f"sweep: key {key!r} is varied more than once")
        spec.random[key] = value
    if samples:
        spec.samples = samples
    if sample_seed:
        spec.sample_seed = sample_seed
    return spec


FILE_KEYS = ("grid", "zip", "random", "samples", "sample_seed", "seeds")


def load_spec_file(path: Path) -> SweepSpec:
    """A sweep YAML file:

        grid: {cluster.node_pools.0.count: [2, 4, 8]}
        zip: {a.b: [1, 2], c.d: [x, y]}
        random: {workload.training.arrival.rate: [0.5, 2.0]}
        samples: 10
        sample_seed: 0
        seeds: 3
    """
    label = str(path)
    try:
        data = load_yaml(read_text(path))
    except InputError as exc:
        raise DcsimError(f"{label}: {exc}") from None
    if not isinstance(data, dict):
        raise DcsimError(f"{label}: expected a mapping with keys {', '.join(FILE_KEYS)}, got {type(data).__name__}")
    unknown = [key for key in data if key not in FILE_KEYS]
    if unknown:
        raise DcsimError(f"{label}: {excerpt(unknown[0])}: unknown key; expected one of {', '.join(FILE_KEYS)}")
    spec = SweepSpec()
    for name, target in (("grid", spec.grid), ("zip", spec.zipped)):
        section = _mapping(label, name, data.get(name, {}))
        for key, values in section.items():
            if not isinstance(values, list):
                raise DcsimError(f"{label}: {name}.{key}: expected a list of values, got {excerpt(values)}")
            target[str(key)] = values
    for key, ends in _mapping(label, "random", data.get("random", {})).items():
        if not isinstance(ends, list) or len(ends) != 2:
            raise DcsimError(f"{label}: random.{key}: expected [LOW, HIGH], got {excerpt(ends)}")
        spec.random[str(key)] = _range(f"{label}: random.", str(key), ends[0], ends[1])
    for name in ("samples", "sample_seed", "seeds"):
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise DcsimError(f"{label}: {name}: expected an integer >= 0, got {excerpt(value)}")
    spec.samples = int(data.get("samples") or 0)
    spec.sample_seed = int(data.get("sample_seed") or 0)
    spec.seeds = data.get("seeds")
    return spec


def _mapping(label: str, name: str, value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, dict):
        raise DcsimError(f"{label}: {name}: expected a mapping of dotted.key -> values, got {excerpt(value)}")
    return value
