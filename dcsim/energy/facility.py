"""Facility power from IT power and outdoor conditions: power-distribution losses and cooling, and the
water evaporated by cooling towers. Vectorised over the rows of the timeseries (numpy arrays).

Facility power = IT + losses + cooling, where
- losses: UPS and PDU conversion (IT drawn through PDU then UPS: IT / (eta_pdu eta_ups) - IT) plus
  other building loads (lighting, security) as a share of IT;
- cooling: every watt of IT and losses becomes heat to remove. Air cooling: air-handler fans, pumps and
  cooling-tower fans (shares of the heat), plus a chiller for whatever the water-side economizer cannot
  take at the current wet bulb. Direct liquid cooling: the liquid share goes to warm water rejected by
  dry coolers (or towers) with pumps, and a chiller only when outdoor air is too warm for the supply
  temperature; the rest of the heat is air-cooled as above.
Chiller COP = eta_2nd x Carnot COP (T_evaporator / lift) with eta_2nd set so the COP is 6.1 at the
AHRI 550/590 rating point (6.7 degC leaving chilled water, 35 degC leaving condenser water), the
ASHRAE 90.1-2019 minimum for large water-cooled centrifugal chillers (0.576 kW/ton); capped at COP_MAX.
Every constant, its value and its source are in the parameter catalog, dcsim/catalog/facility.yaml
(read here into FACILITY_PARAMETERS), and in docs/energy.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from dcsim.scenario.energy import Facility

KELVIN = 273.15


def _catalog() -> dict[str, dict[str, Any]]:
    """catalog/facility.yaml: parameter -> {value, unit, source, assumption}."""
    import yaml

    text = resources.files("dcsim.catalog").joinpath("facility.yaml").read_text(encoding="utf-8")
    return dict(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["parameters"])


FACILITY_CATALOG = _catalog()
FACILITY_PARAMETERS: dict[str, tuple[float, str]] = {
    name: (float(entry["value"]), ("assumption: " if entry.get("assumption") else "") + str(entry["source"]))
    for name, entry in FACILITY_CATALOG.items()}


def _value(name: str) -> float:
    return FACILITY_PARAMETERS[name][0]


# Chiller: the AHRI 550/590 standard rating point and the ASHRAE 90.1-2019 minimum full-load efficiency.
AHRI_CHILLED_WATER_C = _value("ahri_chilled_water_c")
AHRI_CONDENSER_LEAVING_C = _value("ahri_condenser_leaving_c")
AHRI_COP = 3.517 / _value("ahri_kw_per_ton")  # 1 ton of refrigeration = 3.517 kW of heat
CARNOT_EFFICIENCY = AHRI_COP / ((AHRI_CHILLED_WATER_C + KELVIN) / (AHRI_CONDENSER_LEAVING_C - AHRI_CHILLED_WATER_C))
COP_MAX = _value("cop_max")
MIN_LIFT_K = _value("min_lift_k")
# Water loop temperatures.
TOWER_APPROACH_K = _value("tower_approach_k")
CONDENSER_RANGE_K = _value("condenser_range_k")
HX_APPROACH_K = _value("hx_approach_k")
CHILLED_WATER_RANGE_K = _value("chilled_water_range_k")
DRY_COOLER_APPROACH_K = _value("dry_cooler_approach_k")
AIR_TO_WATER_K = _value("air_to_water_k")
# Auxiliaries as shares of the heat they move.
AIR_HANDLER_FANS = _value("air_handler_fans")
PUMPS_AND_TOWERS = _value("pumps_and_towers")
LIQUID_PUMPS_AND_DRY_COOLERS = _value("liquid_pumps")
# Water: latent heat of vaporisation and cycles of concentration of the tower water.
LATENT_HEAT_J_PER_KG = _value("latent_heat_j_per_kg")
CYCLES_OF_CONCENTRATION = _value("cycles_of_concentration")


def chiller_cop(chilled_water_c: np.ndarray | float, condenser_c: np.ndarray | float) -> np.ndarray:
    """Chiller COP at the given leaving chilled-water and leaving condenser temperatures (degC)."""
    evaporator = np.asarray(chilled_water_c, dtype=float) + KELVIN
    lift = np.maximum(np.asarray(condenser_c, dtype=float) + KELVIN - evaporator, MIN_LIFT_K)
    return np.asarray(np.minimum(CARNOT_EFFICIENCY * evaporator / lift, COP_MAX))


@dataclass(frozen=True)
class FacilityPower:
    """Per-row facility components (W) and tower water use (litres per second)."""

    losses_w: np.ndarray
    cooling_w: np.ndarray
    water_l_per_s: np.ndarray
    free_cooling: np.ndarray  # share of the heat removed without a chiller, 0..1

    def facility_w(self, it_w: np.ndarray) -> np.ndarray:
        return it_w + self.losses_w + self.cooling_w


def facility_power(it_w: np.ndarray, dry_bulb: np.ndarray, wet_bulb: np.ndarray, facility: Facility) -> FacilityPower:
    """The facility model at each row: IT power and outdoor dry and wet bulb (degC)."""
    it_w = np.asarray(it_w, dtype=float)
    dry, wet = np.asarray(dry_bulb, dtype=float), np.asarray(wet_bulb, dtype=float)
    losses = it_w * (1.0 / (facility.pdu_efficiency * facility.ups_efficiency) - 1.0 + facility.other_fraction)
    heat = it_w + losses
    cooling = facility.cooling
    if cooling.kind == "liquid":
        liquid_heat = heat * cooling.liquid_fraction
        air_heat = heat - liquid_heat
        liquid_w, liquid_rejected, liquid_free = _liquid(liquid_heat, dry, wet, cooling.supply_water,
                                                         cooling.evaporative)
        air_w, air_rejected, air_free = _air(air_heat, dry, wet, 27.0 - AIR_TO_WATER_K, True, True)
        cooling_w = liquid_w + air_w
        evaporated = liquid_rejected * cooling.evaporative + air_rejected
        with np.errstate(invalid="ignore", divide="ignore"):
            free = np.where(heat > 0, (liquid_free * liquid_heat + air_free * air_heat) / heat, 1.0)
    else:
        chilled = cooling.supply_air - AIR_TO_WATER_K
        cooling_w, rejected, free = _air(heat, dry, wet, chilled, cooling.economizer, cooling.evaporative,
                                         cooling.chiller_cop)
        evaporated = rejected if cooling.evaporative else np.zeros_like(rejected)
    water = evaporated / LATENT_HEAT_J_PER_KG * CYCLES_OF_CONCENTRATION / (CYCLES_OF_CONCENTRATION - 1.0)
    return FacilityPower(losses, cooling_w, water, free)


def _air(heat: np.ndarray, dry: np.ndarray, wet: np.ndarray, chilled_water_c: float, economizer: bool,
         evaporative: bool, fixed_cop: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chilled-water air cooling: (cooling W, heat rejected outdoors W, free-cooling share)."""
    # Water the heat-rejection plant can deliver: towers follow the wet bulb, dry coolers the dry bulb.
    outdoor = wet + TOWER_APPROACH_K if evaporative else dry + DRY_COOLER_APPROACH_K
    if economizer:
        returning = chilled_water_c + CHILLED_WATER_RANGE_K
        precooled = returning - (outdoor + HX_APPROACH_K)
        free = np.clip(precooled / CHILLED_WATER_RANGE_K, 0.0, 1.0)
    else:
        free = np.zeros_like(heat)
    cop = np.full_like(heat, fixed_cop) if fixed_cop is not None else chiller_cop(chilled_water_c,
                                                                                  outdoor + CONDENSER_RANGE_K)
    chiller = heat * (1.0 - free) / cop
    fans = heat * AIR_HANDLER_FANS
    rejected = heat + chiller + fans
    pumps = rejected * PUMPS_AND_TOWERS
    return chiller + fans + pumps, rejected + pumps, free


def _liquid(heat: np.ndarray, dry: np.ndarray, wet: np.ndarray, supply_c: float,
            evaporative: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warm-water direct liquid cooling: (cooling W, heat rejected W, free-cooling share)."""
    outdoor = wet + TOWER_APPROACH_K if evaporative else dry + DRY_COOLER_APPROACH_K
    # The return water is supply + range; the plant cools it free down to `outdoor`, a chiller trims the rest.
    free = np.clip((supply_c + CHILLED_WATER_RANGE_K - outdoor) / CHILLED_WATER_RANGE_K, 0.0, 1.0)
    chiller = heat * (1.0 - free) / chiller_cop(supply_c, outdoor + CONDENSER_RANGE_K)
    pumps = (heat + chiller) * LIQUID_PUMPS_AND_DRY_COOLERS
    return chiller + pumps, heat + chiller + pumps, free
