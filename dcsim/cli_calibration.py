"""`dcsim calibration list | show | report | fit`: the catalog, its fitted models and their errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from dcsim.calibration import Calibration

calibration_app = typer.Typer(no_args_is_help=True, help="Inspect the calibrated catalog or fit your own.")
out = Console(soft_wrap=True, highlight=False)

OverlayOption = Annotated[
    list[Path] | None,
    typer.Option("--overlay", help="apply a calibration overlay written by `dcsim calibration fit` (repeatable)"),
]


def _calibration(overlays: list[Path] | None) -> Calibration:
    from dcsim.calibration import load_calibration

    return load_calibration(overlays or [])


@calibration_app.command("list")
def list_(overlay: OverlayOption = None) -> None:
    """Accelerators, models and every fitted model's error."""
    from dcsim.calibration.listing import list_text

    out.print(list_text(_calibration(overlay)), markup=False)


@calibration_app.command()
def show(name: Annotated[str, typer.Argument(help="accelerator or model name")],
         overlay: OverlayOption = None) -> None:
    """One accelerator or model: every figure with its source, and its fitted coefficients."""
    from dcsim.calibration.listing import show_text

    out.print(show_text(_calibration(overlay), name), markup=False)


@calibration_app.command()
def report(
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for the chart and predictions")] = Path(
        "reports/calibration"),
    measurements: Annotated[Path | None, typer.Option(help="your measurement CSV to add to the chart")] = None,
    overlay: OverlayOption = None,
) -> None:
    """Print every fit error; chart predicted vs measured per model family."""
    from importlib import resources

    import pandas as pd

    from dcsim.calibration.listing import error_lines, predictions
    from dcsim.calibration.table import read_measurements
    from dcsim.reporting.calibration import write_calibration_report

    calibration = _calibration(overlay)
    shipped = resources.files("dcsim.catalog").joinpath("measurements.csv")
    with resources.as_file(shipped) as path:
        table = read_measurements(path)
    if measurements is not None:
        table = pd.concat([table, read_measurements(measurements)], ignore_index=True)
    out.print("Fit errors (absolute percentage error of predicted vs measured)", markup=False)
    for line in error_lines(calibration):
        out.print(line, markup=False)
    for path in write_calibration_report(predictions(calibration, table), output):
        out.print(f"wrote {path}", markup=False)


@calibration_app.command()
def fit(
    measurements: Annotated[Path, typer.Argument(help="measurement CSV (format: docs/calibration.md)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="overlay YAML to write")],
    cross_validate: Annotated[bool, typer.Option(help="also run the leave-one-out checks")] = True,
) -> None:
    """Fit the catalog's models to your measurements and write an overlay a scenario can name."""
    from dcsim.calibration import fit_sections, load_calibration, write_calibration
    from dcsim.calibration.table import read_measurements
    from dcsim.catalog import load_catalog
    from dcsim.errors import CalibrationError

    if output.suffix.lower() not in (".yaml", ".yml"):
        raise CalibrationError(f"-o {output}: expected a .yaml file name for the overlay")
    table = read_measurements(measurements)
    sections = fit_sections(table, load_catalog(), base=load_calibration(), cross_validate=cross_validate)
    header = (f"Calibration overlay fitted by `dcsim calibration fit` from {measurements.name} ({len(table)} rows).\n"
              "Name it in a scenario (calibration: [this file]) or pass --overlay to dcsim calibration.")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_calibration(sections, output, header)
    except OSError as exc:
        raise CalibrationError(f"-o {output}: cannot write the overlay ({exc.strerror or exc})") from None
    out.print(f"fitted {', '.join(sections)} from {len(table)} rows; wrote {output}", markup=False)
    for section in sections.values():
        for error in section.errors:
            out.print("  " + error.line(), markup=False)
