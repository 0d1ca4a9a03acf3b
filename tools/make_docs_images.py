"""Regenerate the chart images that README.md and docs/*.md embed, from the shipped scenarios.

    python tools/make_docs_images.py            # writes docs/quickstart-utilization.png

Each image is one chart of a `dcsim run` of a scenario at its own fixed seed, drawn by the same code as
the run's report, so the pictures in the docs match what users get. Rerun it after a change to the
charts or to the scenario, and commit the images it writes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 200_000  # an image the README loads on every visit should stay small

# docs image -> (scenario, chart file of `dcsim run` it copies)
IMAGES = {
    "quickstart-utilization.png": ("scenarios/quickstart.yaml", "utilization.png"),
}


def make(names: list[str], folder: Path) -> list[Path]:
    """Run each scenario the images need once, draw the charts they show, and write them to `folder`."""
    import dcsim
    from dcsim.reporting.drawing import draw
    from dcsim.reporting.sections import SECTIONS

    written = []
    runs: dict[str, list[str]] = {}
    for name in names:
        runs.setdefault(IMAGES[name][0], []).append(name)
    for scenario, images in runs.items():
        result = dcsim.run(ROOT / scenario)  # the scenario's own seed: the same picture every time
        charts = {chart[0]: chart for section in SECTIONS if section.charts is not None
                  for chart in section.charts(result)}
        with tempfile.TemporaryDirectory() as tmp:
            for name in images:
                chart = IMAGES[name][1]
                if chart not in charts:
                    raise SystemExit(f"{name}: a run of {scenario} draws no {chart}")
                data = draw([charts[chart]], Path(tmp))[0].read_bytes()
                if len(data) > MAX_BYTES:
                    raise SystemExit(f"{name}: {len(data):,} bytes, more than {MAX_BYTES:,}")
                (folder / name).write_bytes(data)
                written.append(folder / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("images", nargs="*", help=f"images to make (default: all of {', '.join(IMAGES)})")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs", help="folder (default: docs/)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.images if name not in IMAGES]
    if unknown:
        parser.error(f"unknown image {', '.join(unknown)}; known: {', '.join(IMAGES)}")
    for path in make(args.images or list(IMAGES), args.output):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
