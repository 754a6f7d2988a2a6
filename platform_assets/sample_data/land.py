"""Drop generated files into the landing zone the way a real upstream would.

Each file is written under a hidden temporary name and renamed into place, so a
watcher never sees half a file. Such a file is complete the moment it appears, so
it is dated ``PLATFORM_LANDING_QUIET_SECONDS`` back: the landing sensor, which waits
that long for files written in place, loads it at once. A landing zone in a bucket
gets each file as one upload (whole when it appears). Without ``--from`` sales
continue the day after the last sales file that ever landed (in landing or archive).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from platform_assets.resources import LandingZone
from platform_assets.sample_data import rossmann
from platform_assets.settings import Settings
from platform_assets.sample_data.generator import (
    DEFAULT_SEED,
    HISTORY_END,
    HISTORY_START,
    N_STORES,
    RossmannGenerator,
    WeatherGenerator,
    write_sales_csv,
    write_stores_csv,
)

BATCH_DAYS = {"daily": 1, "weekly": 7}


@dataclass(frozen=True)
class LandedFile:
    url: str  # a path, or the object's URL
    rows: int

    @property
    def path(self) -> Path:
        return Path(self.url)


def land(
    data_dir: Path,
    *,
    batch: str = "daily",
    first: date | None = None,
    days: int | None = None,
    seed: int | None = None,
    n_stores: int = N_STORES,
    stores: bool = False,
    if_empty: bool = False,
    weather: bool = False,
    zone: LandingZone | None = None,
) -> list[LandedFile]:
    """Land the store master (if it never landed, or if ``stores``) and a range of sales days.

    ``weather``: also the third feed, the stores' states (with the store master) and the
    weather of the same days, one file per sales file. ``zone``: where to land (default: the
    data directory's folders).
    """
    zone = zone or LandingZone(data_dir=str(data_dir))
    if zone.landing.is_local:
        os.makedirs(zone.landing.root, exist_ok=True)
    seen = {e.name for e in zone.landing.entries()} | {e.name for e in zone.archive.entries()}
    if if_empty and seen:
        return []
    generator = RossmannGenerator(DEFAULT_SEED if seed is None else seed, n_stores)

    landed = []
    if stores or rossmann.STORES_FILE not in seen:
        frame = generator.stores.frame
        landed.append(_write_atomically(zone, rossmann.STORES_FILE, frame, write_stores_csv))
    forecast = WeatherGenerator(generator.stores, generator.seed) if weather else None
    if forecast is not None and (stores or rossmann.STORE_STATES_FILE not in seen):
        landed.append(_write_atomically(zone, rossmann.STORE_STATES_FILE, forecast.store_states, write_stores_csv))

    first = first or _next_unlanded_day(seen)
    count = _default_days(batch, first) if days is None else days
    if count < 1:
        raise ValueError(f"--days must be at least 1, got {count}")
    last = first + timedelta(days=count - 1)
    for chunk_first, chunk_last in _chunks(first, last, batch):
        frame = generator.sales(chunk_first, chunk_last)
        name = rossmann.sales_file_name(chunk_first, chunk_last)
        landed.append(_write_atomically(zone, name, frame, write_sales_csv))
        if forecast is not None:
            name = rossmann.dated_file_name("weather", chunk_first, chunk_last)
            landed.append(_write_atomically(zone, name, forecast.weather(chunk_first, chunk_last),
                                            write_stores_csv))
    return landed


def _default_days(batch: str, first: date) -> int:
    if batch == "all":
        if first > HISTORY_END:
            raise ValueError(
                f"--batch all without --days lands the history up to {HISTORY_END}; "
                f"{first} is past it, so say how many --days to land"
            )
        return (HISTORY_END - first).days + 1
    return BATCH_DAYS[batch]


def _chunks(first: date, last: date, batch: str) -> Iterator[tuple[date, date]]:
    step = (last - first).days + 1 if batch == "all" else BATCH_DAYS[batch]
    start = first
    while start <= last:
        end = min(start + timedelta(days=step - 1), last)
        yield start, end
        start = end + timedelta(days=1)


def _next_unlanded_day(seen: set[str]) -> date:
    last_days = [d for d in map(rossmann.last_date_of_sales_file, seen) if d is not None]
    return max(last_days) + timedelta(days=1) if last_days else HISTORY_START


def _write_atomically(
    zone: LandingZone, name: str, frame: pl.DataFrame, write: Callable[[pl.DataFrame, Path], None]
) -> LandedFile:
    if not zone.landing.is_local:  # written here, uploaded whole
        with tempfile.TemporaryDirectory(prefix="landing-") as folder:
            write(frame, Path(folder) / name)
            return LandedFile(zone.drop(Path(folder) / name).url, frame.height)
    target = Path(zone.landing.path_of(name))
    temporary = target.with_name(f".{target.name}.tmp")
    write(frame, temporary)
    settled = time.time() - Settings.from_env().landing_quiet_seconds
    os.utime(temporary, (settled, settled))
    os.replace(temporary, target)
    return LandedFile(str(target), frame.height)
