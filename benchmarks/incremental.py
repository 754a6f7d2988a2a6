"""Full rebuild vs one-day incremental update of cleaned + features, at two history lengths.

The incremental cost must follow the batch, not the history: its time should be
about the same at both lengths while the full rebuild grows with history.

    .venv/bin/python benchmarks/incremental.py [--repeat 3]
"""

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg

from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.config import LayerConfig
from platform_assets.assets.features import sales_features
from platform_assets.definitions import assets, checks
from platform_assets.resources import LandingZone, Warehouse
from platform_assets.sample_data.generator import HISTORY_START
from platform_assets.sample_data.land import land

HISTORIES = {"1 year": 365, "full (942 days)": 942}
RAW = {a.key.to_user_string(): a for a in assets}
raw_sales, raw_stores = RAW["raw/sales"], RAW["raw/stores"]
sales_files = raw_sales.partitions_def
ASSETS = [raw_stores, raw_sales, cleaned_sales, sales_features]
CHECKS = checks


def measure(days: int, repeat: int, workdir: Path) -> dict:
    data_dir = workdir / f"history_{days}"
    resources = {"landing": LandingZone(data_dir=str(data_dir)),
                 "warehouse": Warehouse.embedded(data_dir)}
    with dg.DagsterInstance.ephemeral() as instance:

        def load(name=None):
            """A raw load with its checks, which verify the file for the layers downstream."""
            if name is not None:
                instance.add_dynamic_partitions(sales_files.name, [name])
            return dg.materialize([*ASSETS, *CHECKS], selection=[raw_sales.key if name else raw_stores.key],
                                  partition_key=name, resources=resources, instance=instance)

        def build(full: bool) -> tuple[float, float]:
            """(wall seconds, seconds the two assets report for their own work)."""
            config = LayerConfig(full_rebuild=full)
            started = time.perf_counter()
            result = dg.materialize(
                [cleaned_sales, sales_features], resources=resources, instance=instance,
                run_config=dg.RunConfig(ops={"cleaned__sales": config, "features__sales_features": config}),
            )
            wall = time.perf_counter() - started
            work = sum(e.materialization.metadata["seconds"].value for e in result.get_asset_materialization_events())
            return wall, work

        landed = land(data_dir, batch="all", first=HISTORY_START, days=days)
        load()
        load(landed[-1].path.name)
        build(full=True)  # first build: creates the tables
        full = [build(full=True) for _ in range(repeat)]
        incremental = []
        for i in range(repeat):
            (day,) = land(data_dir, first=HISTORY_START + timedelta(days=days + i), days=1)
            load(day.path.name)
            incremental.append(build(full=False))
    return {
        "full_wall": statistics.median(w for w, _ in full),
        "full_work": statistics.median(c for _, c in full),
        "incr_wall": statistics.median(w for w, _ in incremental),
        "incr_work": statistics.median(c for _, c in incremental),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        results = {label: measure(days, args.repeat, Path(tmp)) for label, days in HISTORIES.items()}

    print(f"\ncleaned + features, median of {args.repeat} runs; 'work' = time the assets report, "
          "'wall' = whole Dagster run")
    header = f"{'history':<18}{'full wall s':>12}{'full work s':>12}{'1-day wall s':>14}{'1-day work s':>14}{'1-day/full':>12}"
    print(header)
    print("-" * len(header))
    for label, r in results.items():
        print(f"{label:<18}{r['full_wall']:>12.2f}{r['full_work']:>12.2f}{r['incr_wall']:>14.2f}"
              f"{r['incr_work']:>14.2f}{r['incr_work'] / r['full_work']:>12.1%}")
    short, long = results.values()
    print(f"\nhistory grew {HISTORIES['full (942 days)'] / HISTORIES['1 year']:.2f}x: "
          f"full rebuild work x{long['full_work'] / short['full_work']:.2f}, "
          f"one-day incremental work x{long['incr_work'] / short['incr_work']:.2f}")


if __name__ == "__main__":
    main()
