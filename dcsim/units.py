"""Parse quantity strings into SI floats: the only place in dcsim where units are read.

Inside dcsim everything is SI: seconds, bytes, bytes/s, watts, joules, FLOP/s. Scenario files may
write "80GiB", "400Gbps", "700W", "5us", "2h" or plain numbers (taken as already SI).
"""

from __future__ import annotations

import re
from typing import Literal

from dcsim.errors import UnitError, excerpt

Kind = Literal["duration", "bytes", "bandwidth", "power", "energy", "rate", "flops"]

_DURATION = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0,
    "h": 3600.0, "hr": 3600.0, "d": 86400.0, "day": 86400.0, "w": 604800.0, "week": 604800.0,
}
_BYTES = {
    "b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
    "kib": 2.0**10, "mib": 2.0**20, "gib": 2.0**30, "tib": 2.0**40, "pib": 2.0**50,
}
# Case matters where it changes the meaning: b = bit, B = byte; m = milli, M = mega.
_BANDWIDTH = {
    "bps": 1 / 8, "kbps": 1e3 / 8, "Mbps": 1e6 / 8, "Gbps": 1e9 / 8, "Tbps": 1e12 / 8,
    "b/s": 1 / 8, "kb/s": 1e3 / 8, "Mb/s": 1e6 / 8, "Gb/s": 1e9 / 8, "Tb/s": 1e12 / 8,
    "B/s": 1.0, "kB/s": 1e3, "KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12,
    "KiB/s": 2.0**10, "MiB/s": 2.0**20, "GiB/s": 2.0**30, "TiB/s": 2.0**40,
}
_POWER = {"W": 1.0, "kW": 1e3, "KW": 1e3, "MW": 1e6, "mW": 1e-3}
_ENERGY = {"J": 1.0, "kJ": 1e3, "MJ": 1e6, "Wh": 3600.0, "kWh": 3.6e6, "MWh": 3.6e9}
_FLOPS = {"flops": 1.0, "gflops": 1e9, "tflops": 1e12, "pflops": 1e15}

_TABLES: dict[str, dict[str, float]] = {
    "duration": _DURATION, "bytes": _BYTES, "bandwidth": _BANDWIDTH, "power": _POWER,
    "energy": _ENERGY, "flops": _FLOPS,
}
_EXPECTED = {
    "duration": 'a duration like "90s", "5min", "2h", "3d" or seconds as a number',
    "bytes": 'a size like "80GiB", "512MB" or bytes as a number',
    "bandwidth": 'a bandwidth like "400Gbps", "25GB/s" or bytes/s as a number',
    "power": 'a power like "700W", "10.2kW" or watts as a number',
    "energy": 'an energy like "5kWh", "3MJ" or joules as a number',
    "rate": 'a rate like "20/h", "3/min", "0.5/s" or events per second as a number',
    "flops": 'a throughput like "989TFLOPS" or FLOP/s as a number',
}
# A number, then an optional unit: what parse reads (rates aside).
NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ/]*)\s*$")


def expected(kind: Kind) -> str:
    """What a value of this kind should look like, for error messages."""
    return _EXPECTED[kind]


def parse(value: object, kind: Kind) -> float:
    """Return the SI value of ``value``; numbers pass through unchanged.

    Raises UnitError naming what was expected.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected {_EXPECTED[kind]}, got {excerpt(value)}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise UnitError(f"expected {_EXPECTED[kind]}, got {excerpt(value)}")
    if kind == "rate":
        return _parse_rate(value)
    match = NUMBER_UNIT.match(value)
    if match is None:
        raise UnitError(f"expected {_EXPECTED[kind]}, got {excerpt(value)}")
    number, unit = float(match.group(1)), match.group(2)
    if not unit:
        return number
    factor = _lookup(_TABLES[kind], unit)
    if factor is None:
        raise UnitError(f"unknown unit {excerpt(unit)} in {excerpt(value)}; expected {_EXPECTED[kind]}")
    return number * factor


def _lookup(table: dict[str, float], unit: str) -> float | None:
    """Exact match first; otherwise case-insensitive, but only where that is unambiguous."""
    if unit in table:
        return table[unit]
    matches = {key: factor for key, factor in table.items() if key.lower() == unit.lower()}
    if len(set(matches.values())) > 1:
        raise UnitError(f"unit {excerpt(unit)} is ambiguous: write {' or '.join(sorted(matches))}")
    return next(iter(matches.values()), None)


def _parse_rate(value: str) -> float:
    if "/" not in value:
        raise UnitError(f"expected {_EXPECTED['rate']}, got {excerpt(value)}")
    count_text, _, per_text = value.partition("/")
    try:
        count = float(count_text)
    except ValueError:
        raise UnitError(f"expected {_EXPECTED['rate']}, got {excerpt(value)}") from None
    per_text = per_text.strip()
    if not per_text:
        raise UnitError(f"expected {_EXPECTED['rate']}, got {excerpt(value)}")
    per = parse(per_text if per_text[:1].isdigit() else f"1{per_text}", "duration")
    if per <= 0:
        raise UnitError(f"expected {_EXPECTED['rate']}, got {excerpt(value)}")
    return count / per


def format_duration(seconds: float) -> str:
    """Human-readable duration for tables and charts ("3.2 h")."""
    magnitude = abs(seconds)
    if magnitude < 120:
        return f"{seconds:.1f} s"
    if magnitude < 7200:
        return f"{seconds / 60:.1f} min"
    if magnitude < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
