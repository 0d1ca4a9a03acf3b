"""`dcsim calibration list | show | report | fit`: the catalog, its fitted models and their errors."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd

    from dcsim.calibration import Calibration
    from dcsim.catalog import AcceleratorSpec

calibration_app = typer.Typer(no_args_is_help=True, help="Inspect the calibrated catalog or fit your own.")
out = Console(soft_wrap=True, highlight=False)

ForceOption = Annotated[bool, typer.Option("--force", help="overwrite files that exist and dcsim cannot replace")]
OverlayOption = Annotated[
    list[Path] | None,
    typer.Option("--overlay", help="apply a calibration overlay written by `dcsim calibration fit` (repeatable)"),
]
CatalogOption = Annotated[
    list[Path] | None,
    typer.Option("--catalog", help="catalog overlay file defining accelerators (format dcsim-catalog/1; repeatable)"),
]


def _accelerators(catalogs: list[Path] | None) -> tuple[AcceleratorSpec, ...]:
    from dcsim.scenario.accelerators import read_catalog_overlay, specs_from

    return specs_from([(str(path), read_catalog_overlay(path)) for path in catalogs or []])


def _calibration(overlays: list[Path] | None, catalogs: list[Path] | None = None) -> Calibration:
    from dcsim.calibration import load_calibration

    return load_calibration(overlays or [], _accelerators(catalogs))


@calibration_app.command("list")
def list_(overlay: OverlayOption = None, catalog: CatalogOption = None) -> None:
    """Accelerators, models and every fitted model's error."""
    from dcsim.calibration.listing import list_text

    out.print(list_text(_calibration(overlay, catalog)), markup=False)


@calibration_app.command()
def show(name: Annotated[str, typer.Argument(help="accelerator or model name")],
         overlay: OverlayOption = None, catalog: CatalogOption = None) -> None:
    """One accelerator or model: every figure with its source, and its fitted coefficients."""
    from dcsim.calibration.listing import show_text

    out.print(show_text(_calibration(overlay, catalog), name), markup=False)


@calibration_app.command()
def report(
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for the chart and predictions")] = Path(
        "reports/calibration"),
    measurements: Annotated[Path | None, typer.Option(help="your measurement CSV to add to the chart")] = None,
    overlay: OverlayOption = None,
    catalog: CatalogOption = None,
    force: ForceOption = False,
) -> None:
    """Print every fit error; chart predicted vs measured per model family (rows of accelerators no
    model was fitted to in panels of their own, marked extrapolated).

    The folder is written like a run's: replaced whole only when dcsim wrote everything in it. With
    --force, predictions.csv and calibration.png are written into any other folder, replacing only those two.
    """
    from importlib import resources

    import pandas as pd

    from dcsim.calibration.listing import error_lines, predictions
    from dcsim.calibration.table import read_measurements

    in_place = _report_in_place(output, force)  # before any work: a bad path fails at once
    calibration = _calibration(overlay, catalog)
    shipped = resources.files("dcsim.catalog").joinpath("measurements.csv")
    with resources.as_file(shipped) as path:
        table = read_measurements(path)
    if measurements is not None:
        table = pd.concat([table, read_measurements(measurements, calibration.catalog)], ignore_index=True)
    out.print("Fit errors (absolute percentage error of predicted vs measured)", markup=False)
    for line in error_lines(calibration):
        out.print(line, markup=False)
    for path in _write_report(predictions(calibration, table), output, in_place):
        out.print(f"wrote {path}", markup=False)


_REPORT_FILES = ("predictions.csv", "calibration.png")


def _report_in_place(output: Path, force: bool) -> bool:
    """Whether the report goes into `output` file by file (--force into a folder dcsim may not replace)."""
    from dcsim.errors import CalibrationError, ResultError
    from dcsim.output_folders import check_output_folder

    try:
        check_output_folder(output)
        return False
    except ResultError as exc:
        if output.exists() and not output.is_dir():
            raise CalibrationError(f"-o {output}: exists and is not a folder; choose another output path") from None
        if not force:
            raise ResultError(f"{exc} (or pass --force to write {' and '.join(_REPORT_FILES)} into it, "
                              "replacing only those)") from None
        return True


def _write_report(table: pd.DataFrame, output: Path, in_place: bool) -> list[Path]:
    from dcsim.errors import CalibrationError
    from dcsim.output_folders import csv_safe, write_atomically
    from dcsim.reporting.calibration import write_calibration_report

    table = csv_safe(table)  # model names come from the user's CSV; the chart shows only families and accelerators
    if not in_place:
        written = write_atomically(output, lambda tmp: write_calibration_report(table, tmp),
                                   {"kind": "calibration-report"})
        return [written / name for name in _REPORT_FILES]
    try:
        return write_calibration_report(table, output)
    except OSError as exc:
        raise CalibrationError(f"-o {output}: cannot write the report ({exc.strerror or exc})") from None


@calibration_app.command()
def fit(
    measurements: Annotated[Path, typer.Argument(help="measurement CSV (format: docs/calibration.md)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="overlay YAML to write")],
    cross_validate: Annotated[bool, typer.Option(help="also run the leave-one-out checks")] = True,
    catalog: CatalogOption = None,
    force: ForceOption = False,
) -> None:
    """Fit the catalog's models to your measurements and write an overlay a scenario can name.

    Measurements of an accelerator the catalog lacks need its datasheet figures: define it in a catalog
    overlay file and pass --catalog (scenarios using the fit name the same file under `catalog:`)."""
    from dcsim.calibration import fit_sections, load_calibration, write_calibration
    from dcsim.calibration.table import read_measurements
    from dcsim.errors import CalibrationError

    if output.suffix.lower() not in (".yaml", ".yml"):
        raise CalibrationError(f"-o {output}: expected a .yaml file name for the overlay")
    if output.is_dir():
        raise CalibrationError(f"-o {output}: is a folder; expected a .yaml file name for the overlay")
    if (output.exists() or output.is_symlink()) and not force:
        raise CalibrationError(f"-o {output}: exists; pass --force to overwrite it or choose another file name")
    base = load_calibration((), _accelerators(catalog))
    table = read_measurements(measurements, base.catalog)
    sections = fit_sections(table, base.catalog, base=base, cross_validate=cross_validate)
    header = (f"Calibration overlay fitted by `dcsim calibration fit` from {measurements.name} ({len(table)} rows).\n"
              "Name it in a scenario (calibration: [this file]) or pass --overlay to dcsim calibration.")
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:  # through a temporary sibling: an overlay being replaced is never left half written
        output.parent.mkdir(parents=True, exist_ok=True)
        write_calibration(sections, tmp, header)
        os.replace(tmp, output)
    except OSError as exc:
        raise CalibrationError(f"-o {output}: cannot write the overlay ({exc.strerror or exc})") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    out.print(f"fitted {', '.join(sections)} from {len(table)} rows; wrote {output}", markup=False)
    for section in sections.values():
        for error in section.errors:
            out.print("  " + error.line(), markup=False)
