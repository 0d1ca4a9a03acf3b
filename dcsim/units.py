"""Parse quantity strings into SI floats: the only place in dcsim where units are read.

Inside dcsim everything is SI: seconds, bytes, bytes/s, watts, joules, FLOP/s. Scenario files may
write "80GiB", "400Gbps", "700W", "5us", "2h" or plain numbers (taken as already SI).
"""

from __future__ import annotations

import re
from typing import Literal

from dcsim.errors import UnitError

Kind = Literal["duration", "bytes", "bandwidth", "power", "energy", "rate", "flops"]

_DURATION = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0,
    "h": 3600.0, "hr": 3600.0, "d": 86400.0, "day": 86400.0, "w": 604800.0, "week": 604800.0,
}
_BYTES = {
    "b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
    "kib": 2.0**10, "mib": 2.0**20, "gib": 2.0**30, "tib": 2.0**40, "pib": 2.0**50,
}
_BANDWIDTH = {
    "bps": 1 / 8, "kbps": 1e3 / 8, "mbps": 1e6 / 8, "gbps": 1e9 / 8, "tbps": 1e12 / 8,
    "b/s": 1.0, "kb/s": 1e3, "mb/s": 1e6, "gb/s": 1e9, "tb/s": 1e12,
    "kib/s": 2.0**10, "mib/s": 2.0**20, "gib/s": 2.0**30, "tib/s": 2.0**40,
}
_POWER = {"w": 1.0, "kw": 1e3, "mw": 1e6}
_ENERGY = {"j": 1.0, "kj": 1e3, "mj": 1e6, "wh": 3600.0, "kwh": 3.6e6, "mwh": 3.6e9}
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
_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ/]*)\s*$")


def expected(kind: Kind) -> str:
    """What a value of this kind should look like, for error messages."""
    return _EXPECTED[kind]


def parse(value: object, kind: Kind) -> float:
    """Return the SI value of ``value``; numbers pass through unchanged.

    Raises UnitError naming what was expected.
    """
    if isinstance(value, bool):
        raise UnitError(f"expected {_EXPECTED[kind]}, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise UnitError(f"expected {_EXPECTED[kind]}, got {value!r}")
    if kind == "rate":
        return _parse_rate(value)
    match = _NUMBER_UNIT.match(value)
    if match is None:
        raise UnitError(f"expected {_EXPECTED[kind]}, got {value!r}")
    number, unit = float(match.group(1)), match.group(2)
    if not unit:
        return number
    table = _TABLES[kind]
    # Bandwidth distinguishes bits (Gbps) from bytes (GB/s) by case of "b" only in "bps" forms,
    # which are all lower-case keys; lower-casing everything else is safe.
    factor = table.get(unit.lower())
    if factor is None:
        raise UnitError(f"unknown unit {unit!r} in {value!r}; expected {_EXPECTED[kind]}")
    return number * factor


def _parse_rate(value: str) -> float:
    if "/" not in value:
        raise UnitError(f"expected {_EXPECTED['rate']}, got {value!r}")
    count_text, _, per_text = value.partition("/")
    try:
        count = float(count_text)
    except ValueError:
        raise UnitError(f"expected {_EXPECTED['rate']}, got {value!r}") from None
    per_text = per_text.strip()
    per = parse(per_text if per_text[:1].isdigit() else f"1{per_text}", "duration")
    if per <= 0:
        raise UnitError(f"expected {_EXPECTED['rate']}, got {value!r}")
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
