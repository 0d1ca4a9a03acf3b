import pytest

from dcsim.errors import UnitError
from dcsim.units import format_duration, parse


@pytest.mark.parametrize(("text", "kind", "expected"), [
    ("80GiB", "bytes", 80 * 2**30),
    ("512MB", "bytes", 512e6),
    ("400Gbps", "bandwidth", 50e9),
    ("25GB/s", "bandwidth", 25e9),
    ("400Gb/s", "bandwidth", 50e9),
    ("400gbps", "bandwidth", 50e9),
    ("5mW", "power", 5e-3),
    ("5MW", "power", 5e6),
    ("2kw", "power", 2e3),
    ("700W", "power", 700.0),
    ("10.2kW", "power", 10200.0),
    ("5us", "duration", 5e-6),
    ("2h", "duration", 7200.0),
    ("3d", "duration", 259200.0),
    ("90", "duration", 90.0),
    (42, "duration", 42.0),
    ("20/h", "rate", 20 / 3600),
    ("3/5min", "rate", 3 / 300),
    ("5kWh", "energy", 1.8e7),
    ("989TFLOPS", "flops", 989e12),
])
def test_parse_to_si(text: object, kind: str, expected: float) -> None:
    assert parse(text, kind) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "kind", "fragment"), [
    ("5 parsecs", "power", "unknown unit 'parsecs'"),
    ("fast", "duration", 'expected a duration like "90s"'),
    ("20", "rate", 'expected a rate like "20/h"'),
    ("3/", "rate", 'expected a rate like "20/h"'),
    ("25gb/s", "bandwidth", "unit 'gb/s' is ambiguous: write GB/s or Gb/s"),
    ("5mw", "power", "unit 'mw' is ambiguous: write MW or mW"),
    (True, "duration", "got True"),
    ([1], "bytes", "got [1]"),
])
def test_bad_quantities_say_what_was_expected(text: object, kind: str, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        parse(text, kind)  # type: ignore[arg-type]


def test_format_duration_picks_a_readable_unit() -> None:
    assert format_duration(30) == "30.0 s"
    assert format_duration(600) == "10.0 min"
    assert format_duration(3 * 3600) == "3.0 h"
    assert format_duration(3 * 86400) == "3.0 d"
