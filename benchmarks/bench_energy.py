"""Energy benchmark (issue 17): a 30-day run of the quickstart cluster with hourly carbon and weather
series and the facility model, against the same run with constant PUE and intensity. Target: < 2x.

Both runs: scenarios/quickstart.yaml (128 accelerators, EASY backfill) with 30 days of jobs at its rate
(8/h, about 5,760 jobs) and a 30-day horizon. The series run adds energy.start (2022-07-01, US Pacific),
the CAISO 2022 hourly carbon intensity (repeat: year), Phoenix typical-year EPW weather, air cooling with
chillers and economizer, and a constant price; with --power (a build that has policies.power, the
power-policies branch) also idle shutdown and a power budget in both runs. Timed: dcsim.run on a loaded
scenario (build, simulate, frames, summary); runs alternate so machine noise falls on both alike.
Prints figures; asserts nothing.

Usage:
    python benchmarks/bench_energy.py [--repeat N] [--days D] [--power] [--data FOLDER]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import dcsim
from dcsim.inputs import load_yaml
from dcsim.scenario.loading import scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "scenarios" / "quickstart.yaml"
DATA = ROOT.parent / "shared" / "data" / "sustaindc-grid-weather"
POWER = {"name": "combined", "params": {"parts": [
    {"name": "budget", "budget": "50kW"}, {"name": "idle_shutdown", "idle_after": "30min"}]}}


def scenario(days: float, series: bool, power: bool, data_folder: Path = DATA) -> Any:
    data = load_yaml(QUICK.read_text())
    data["horizon"] = f"{days * 24}h"
    data["workload"]["training"]["jobs"] = int(8 * 24 * days)
    if power:
        data["policies"]["power"] = POWER
    if series:
        data["energy"] = {
            "start": "2022-07-01T00:00:00-07:00", "price": 80,
            "carbon_intensity": {"file": str(data_folder / "carbon_intensity" / "CISO.csv"), "value_column": "avg_CI",
                                 "unit": "gCO2/kWh", "repeat": "year", "missing": "hold"},
            "weather": {"file": str(data_folder / "weather" / "USA_AZ_Phoenix-Sky.Harbor.epw")},
            "facility": {"cooling": {"kind": "air"}}}
    return scenario_from_dict(data, "bench-energy", str(QUICK.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--power", action="store_true", help="add idle shutdown and a power budget to both runs")
    parser.add_argument("--data", type=Path, default=DATA, help="the sustaindc-grid-weather folder")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"energy: {args.data} missing; nothing measured")
        return
    runs = {"constant": scenario(args.days, False, args.power, args.data),
            "series": scenario(args.days, True, args.power, args.data)}
    walls: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, dcsim.RunResult] = {}
    for _ in range(args.repeat):
        for name, loaded in runs.items():
            started = time.perf_counter()
            results[name] = dcsim.run(loaded)
            walls[name].append(time.perf_counter() - started)
    for name, result in results.items():
        energy = result.summary["energy"]
        print(f"{name}: median {statistics.median(walls[name]):.2f} s over {len(walls[name])} runs "
              f"({', '.join(f'{w:.2f}' for w in walls[name])}); events {result.summary['events']:,}, "
              f"timeseries rows {len(result.timeseries):,}, jobs {len(result.jobs):,}, "
              f"facility {energy['facility_kwh']:,.0f} kWh, PUE {energy['pue']:.3f}, "
              f"carbon {energy['carbon_kg']:,.0f} kg"
              + (f", water {energy['water_l']:,.0f} L, cost {energy['cost']:,.0f} {energy['currency']}"
                 if "water_l" in energy else ""))
    ratio = statistics.median(walls["series"]) / statistics.median(walls["constant"])
    print(f"series / constant: {ratio:.2f}x (target < 2x){' with idle shutdown and a budget' if args.power else ''}")


if __name__ == "__main__":
    main()
