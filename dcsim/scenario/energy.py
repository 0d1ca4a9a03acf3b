"""The `energy:` section: start date and time, carbon intensity, price and weather (numbers or series),
and the facility: a constant PUE (the default) or a cooling and power-distribution model.

Series files are read when the model is built (dcsim/energy/loading.py), not here, so validating a
scenario stays cheap; their problems are reported as one line naming the file and field, exit 2.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from dcsim.scenario.base import Strict, _NotANumber


class SeriesFile(Strict):
    """A CSV series: one row per change, a time column and a value column, its unit and time zone."""

    file: str = Field(min_length=1, description="CSV file, relative to the scenario file")
    time_column: str = Field("timestamp", min_length=1, description="ISO 8601 date-times (with or without offset)")
    value_column: str = Field(min_length=1)
    unit: str = Field(min_length=1, description="unit of the values, e.g. gCO2/kWh, USD/MWh, degC")
    time_zone: str | None = Field(None, description="IANA zone (e.g. America/Los_Angeles, UTC) of times that "
                                                    "carry no offset")
    repeat: Literal["none", "day", "year"] = Field(
        "none", description="none: values hold from their time on; day/year: the series is one day or year "
                            "that repeats, aligned by time of day / of year to energy.start")
    missing: Literal["error", "hold"] = Field(
        "error", description="an empty value cell: an error, or hold the value before it (counted in the summary)")


class Weather(Strict):
    """Outdoor conditions: an EPW file, a CSV series, or constant numbers (degC)."""

    file: str | None = Field(None, description="EPW (typical-year weather) or CSV file, relative to the scenario")
    time_column: str = "timestamp"
    dry_bulb_column: str | None = Field(None, description="CSV: dry-bulb temperature column")
    wet_bulb_column: str | None = Field(None, description="CSV: wet-bulb temperature column")
    dew_point_column: str | None = Field(None, description="CSV: dew-point column (wet bulb derived from it)")
    unit: str | None = Field(None, description="CSV: temperature unit, degC, degF or K (EPW: degC)")
    time_zone: str | None = Field(None, description="CSV: IANA zone of times without offset (EPW: from its header)")
    repeat: Literal["none", "day", "year"] | None = Field(None, description="CSV: default none; EPW: year")
    dry_bulb: float | None = Field(None, ge=-90, le=60, description="constant dry-bulb temperature, degC")
    wet_bulb: float | None = Field(None, ge=-90, le=60, description="constant wet-bulb temperature, degC")

    @model_validator(mode="after")
    def _one_source(self) -> Weather:
        if self.file is None:
            if self.dry_bulb is None or self.wet_bulb is None:
                raise ValueError("give a weather file, or both dry_bulb and wet_bulb (degC)")
            if self.wet_bulb > self.dry_bulb:
                raise ValueError(f"wet_bulb ({self.wet_bulb} degC) cannot exceed dry_bulb ({self.dry_bulb} degC)")
        elif self.dry_bulb is not None or self.wet_bulb is not None:
            raise ValueError("give either a weather file or constant dry_bulb/wet_bulb, not both")
        elif not self.file.lower().endswith(".epw"):
            if self.dry_bulb_column is None or self.unit is None:
                raise ValueError("a CSV weather file needs dry_bulb_column and unit")
            if (self.wet_bulb_column is None) == (self.dew_point_column is None):
                raise ValueError("a CSV weather file needs one of wet_bulb_column or dew_point_column")
        return self


class AirCooling(Strict):
    """Chilled-water air cooling with a water-side economizer (free cooling when it is cold enough)."""

    kind: Literal["air"]
    chiller_cop: float | None = Field(None, gt=0, le=30, description="override the catalog COP curve: a constant")
    supply_air: float = Field(27.0, ge=15, le=35, description="cold-aisle supply temperature, degC (ASHRAE A1 "
                                                              "recommended 18-27)")
    economizer: bool = True
    evaporative: bool = Field(True, description="cooling towers reject heat by evaporation (water use)")


class LiquidCooling(Strict):
    """Direct liquid cooling: warm water to cold plates, dry coolers most hours, a small chiller trim."""

    kind: Literal["liquid"]
    liquid_fraction: float = Field(0.8, ge=0, le=1, description="share of IT heat taken by the liquid loop")
    supply_water: float = Field(32.0, ge=15, le=45, description="facility water supply, degC (ASHRAE W32)")
    evaporative: bool = False


Cooling = Annotated[AirCooling | LiquidCooling, Field(discriminator="kind")]


class Facility(Strict):
    """Facility power = IT + power-distribution losses + cooling, from outdoor conditions (docs/energy.md)."""

    cooling: Cooling = AirCooling(kind="air")
    ups_efficiency: float = Field(0.96, gt=0.5, le=1.0, description="double-conversion UPS at typical load")
    pdu_efficiency: float = Field(0.985, gt=0.5, le=1.0, description="PDU transformer and distribution")
    other_fraction: float = Field(0.02, ge=0, le=0.5, description="lighting, offices, security: share of IT")


class Energy(Strict):
    pue: float = Field(1.2, ge=1.0, le=5.0, description="power usage effectiveness: facility / IT power "
                                                        "(ignored with a facility model, which computes it)")
    carbon_intensity: float | SeriesFile = Field(
        400.0, description="grid carbon intensity, gCO2 per kWh: a number or a CSV series")
    price: float | SeriesFile | None = Field(None, description="electricity price per MWh: a number or a series")
    currency: str = Field("USD", min_length=1, max_length=8)
    start: AwareDatetime | None = Field(None, description="date and time of the run's start, with offset, e.g. "
                                                          "2022-07-01T08:00:00-07:00; needed by series")
    weather: Weather | None = None
    facility: Facility | None = Field(None, description="cooling and power-distribution model; without it, "
                                                        "facility power = IT x pue")
    busy_power_fraction: float | None = Field(
        None, gt=0, le=1.0,
        description="fraction of TDP a computing accelerator draws; default: the calibrated training power "
                    "where the catalog has one, else 1.0",
    )

    @field_validator("carbon_intensity", "price", mode="before")
    @classmethod
    def _number_in_range(cls, value: Any, info: Any) -> Any:
        """A number (checked here, so an error names one expectation) or a series mapping."""
        if value is None or isinstance(value, dict | SeriesFile):
            return value
        if isinstance(value, _NotANumber) or not isinstance(value, int | float):
            raise ValueError("Input should be a number or a series mapping (file, value_column, unit, ...)")
        high = 5000.0 if info.field_name == "carbon_intensity" else 1e5
        if value < 0:
            raise ValueError("Input should be greater than or equal to 0")
        if value > high:
            raise ValueError(f"Input should be less than or equal to {high:g}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        """As the base does, for fields that take a number or a series mapping: text or a boolean given
        for the number is an error, and the mapping's own text fields are left alone."""
        if not isinstance(data, dict):
            return data
        marked = dict(data)
        for key, value in data.items():
            if key in ("carbon_intensity", "price", "pue", "busy_power_fraction") and isinstance(value, bool | str):
                marked[key] = _NotANumber(value)
        return marked

    @model_validator(mode="after")
    def _consistent(self) -> Energy:
        series = [isinstance(self.carbon_intensity, SeriesFile), isinstance(self.price, SeriesFile),
                  self.weather is not None and self.weather.file is not None]
        if any(series) and self.start is None:
            raise ValueError("series inputs need energy.start, the date and time of the run's start "
                             "with its offset (e.g. 2022-07-01T00:00:00-07:00)")
        if self.facility is not None and self.weather is None:
            raise ValueError("a facility model needs weather (a file, or constant dry_bulb and wet_bulb)")
        return self

    @property
    def constant_carbon_intensity(self) -> float:
        """The number given, or 0 for a series (whose energy section the energy subsystem writes)."""
        return float(self.carbon_intensity) if isinstance(self.carbon_intensity, float | int) else 0.0

    @property
    def uses_series(self) -> bool:
        """Whether anything beyond the constant PUE and intensity is asked for (else outputs as before)."""
        # By value, not by the fields given: a resolved scenario.yaml (and a sweep's point) writes every
        # field, null where unset, and must run exactly as the scenario it came from.
        return any(value is not None for value in (self.price, self.start, self.weather, self.facility)) or isinstance(
            self.carbon_intensity, SeriesFile)
