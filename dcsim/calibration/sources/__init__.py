"""Readers that turn the public datasets in ../shared/data into the measurement table (table.py).

Each module exposes `read(data: Path) -> pandas.DataFrame` returning checked rows with a `source`
per row; tools/build_catalog.py concatenates them and fits the shipped calibration.
"""
