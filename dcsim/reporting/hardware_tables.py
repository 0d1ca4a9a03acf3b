"""Report table for summary.json `hardware`: accelerators whose speeds are extrapolated (issue 15)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dcsim.reporting.format import esc, table


def hardware_tables(s: Mapping[str, Any]) -> str:
    hardware = s.get("hardware")
    entries = hardware.get("extrapolated") if isinstance(hardware, Mapping) else None
    if not isinstance(entries, Mapping) or not entries:
        return ""
    rows = [[esc(name), esc(entry.get("speeds", "")), esc(entry.get("defined_in", ""))]
            for name, entry in entries.items() if isinstance(entry, Mapping)]
    note = ("<p class=\"meta\">No measurement of these accelerators backs their speeds: the fitted models "
            "extrapolate from their datasheet figures (docs/calibration.md).</p>")
    return f"<h2>Extrapolated hardware</h2>{note}{table(['accelerator', 'speeds', 'defined in'], rows)}"
