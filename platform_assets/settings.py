"""Every path and environment variable the platform reads, in one place.

All data lives under PLATFORM_DATA_DIR (default ``./data``):

    landing/     upstream drops files here (PLATFORM_LANDING_URL moves it, e.g. to s3://landing/)
    archive/     every loaded version of a file: ``archive/<name>/<landed at>-<sha256 prefix>.csv``
                 (PLATFORM_ARCHIVE_URL)
    quarantine/  entries that could not be loaded, each with ``<name>.reason.txt`` (PLATFORM_QUARANTINE_URL)
    lake.sqlite  the DuckLake catalog (embedded default; PLATFORM_LAKE_CATALOG moves it to PostgreSQL)
    lake/        the lake's Parquet files (PLATFORM_LAKE_DATA_PATH moves them to shared storage)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "PLATFORM_DATA_DIR"
LAKE_CATALOG_ENV = "PLATFORM_LAKE_CATALOG"
LAKE_DATA_PATH_ENV = "PLATFORM_LAKE_DATA_PATH"
# the landing zone: a folder each, or object-store URLs (storage.py)
LANDING_URL_ENV = "PLATFORM_LANDING_URL"
ARCHIVE_URL_ENV = "PLATFORM_ARCHIVE_URL"
QUARANTINE_URL_ENV = "PLATFORM_QUARANTINE_URL"
SENSOR_INTERVAL_ENV = "PLATFORM_SENSOR_INTERVAL_SECONDS"
CONTRACTS_ENV = "PLATFORM_CONTRACTS_DIR"
DEFS_ENV = "PLATFORM_DEFS_DIR"
AUTOMATION_INTERVAL_ENV = "PLATFORM_AUTOMATION_INTERVAL_SECONDS"
RETENTION_ENV = "PLATFORM_VERSION_RETENTION_HOURS"
READER_GRACE_ENV = "PLATFORM_READER_GRACE_HOURS"
CATALOG_LOCK_ENV = "PLATFORM_CATALOG_LOCK_SECONDS"
RETRAIN_INTERVAL_ENV = "PLATFORM_RETRAIN_MIN_INTERVAL_SECONDS"
QUIET_ENV = "PLATFORM_LANDING_QUIET_SECONDS"
RETRY_ENV = "PLATFORM_LANDING_RETRY_SECONDS"
STUCK_ENV = "PLATFORM_LANDING_STUCK_SECONDS"
FRESHNESS_ENV = "PLATFORM_FRESHNESS_HOURS"
ALERT_URLS_ENV = "PLATFORM_ALERT_URLS"
ALERT_GROUP_ENV = "PLATFORM_ALERT_GROUP_SECONDS"
UI_URL_ENV = "PLATFORM_UI_URL"
MEMORY_LIMIT_ENV = "PLATFORM_MEMORY_LIMIT"
# the cluster profile (execution.py): the Celery broker, and when a task a dead host held is handed out again
CELERY_BROKER_ENV = "PLATFORM_CELERY_BROKER"
CELERY_REDELIVER_ENV = "PLATFORM_CELERY_REDELIVER_SECONDS"
# the share of the machine's memory one run may use when PLATFORM_MEMORY_LIMIT is not set
DEFAULT_MEMORY_SHARE = 0.25
# soda/contracts/ beside the package in a checkout (the README installs it editable)
DEFAULT_CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "soda" / "contracts"
# the landed datasets: a folder per dataset with its defs.yaml and contract
DEFAULT_DEFS_DIR = Path(__file__).resolve().parent / "defs"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    # DuckLake's catalog database: sqlite:<file> (embedded) or postgres:<libpq connection string>
    lake_catalog: str
    # where the lake's Parquet files live: a folder every run can reach, or an object-store URL
    lake_data_path: str
    # where files land, where each loaded version is kept, where what cannot be loaded goes:
    # folders, or object-store URLs (s3://bucket/prefix)
    landing_url: str
    archive_url: str
    quarantine_url: str
    sensor_interval_seconds: int
    automation_interval_seconds: int
    contracts_dir: Path
    # where the landed datasets are declared: a folder each, with its defs.yaml and Soda contract
    defs_dir: Path
    version_retention_hours: int
    # a snapshot a reader may still be reading (it stopped being the newest less than this long ago)
    # is never expired by maintenance, nor are the files it reads deleted
    reader_grace_hours: float
    # a commit waits this long for a lock another process holds on the SQLite catalog file, then fails
    catalog_lock_seconds: float
    retrain_min_interval_seconds: int
    # a landed file is complete once it has not changed for this long (writers that write in place)
    landing_quiet_seconds: float
    # a file whose load failed is tried again after this long, doubling per attempt (at most an hour)
    landing_retry_seconds: float
    # a file still in landing/ after this long is reported as stuck
    landing_stuck_seconds: float
    # the daily layers are stale when not updated for this long (a FreshnessPolicy on each)
    freshness_hours: float
    # where alerts go: apprise URLs separated by spaces; ${VAR} in them is read from the environment
    alert_urls: str
    # alerts raised within this long of each other (a burst) go out as one message
    alert_group_seconds: float
    # the Dagster UI as the people who get alerts reach it: links in messages point there
    ui_url: str
    # what one run's process may use (DuckDB's buffers, the transform's chunks and the libraries);
    # DuckDB spills to tmp/ under the data directory beyond its share
    memory_limit_bytes: int

    @classmethod
    def from_env(cls, data_dir: Path | None = None) -> Settings:
        """From the environment; ``data_dir`` (a command's --data-dir) stands for PLATFORM_DATA_DIR."""
        data_dir = Path(data_dir or os.environ.get(DATA_DIR_ENV, "data")).resolve()
        return cls(
            data_dir=data_dir,
            lake_catalog=os.environ.get(LAKE_CATALOG_ENV) or embedded_lake(data_dir)[0],
            lake_data_path=os.environ.get(LAKE_DATA_PATH_ENV) or embedded_lake(data_dir)[1],
            landing_url=os.environ.get(LANDING_URL_ENV) or str(data_dir / "landing"),
            archive_url=os.environ.get(ARCHIVE_URL_ENV) or str(data_dir / "archive"),
            quarantine_url=os.environ.get(QUARANTINE_URL_ENV) or str(data_dir / "quarantine"),
            sensor_interval_seconds=int(os.environ.get(SENSOR_INTERVAL_ENV, "10")),
            automation_interval_seconds=int(os.environ.get(AUTOMATION_INTERVAL_ENV, "30")),
            contracts_dir=Path(os.environ.get(CONTRACTS_ENV, DEFAULT_CONTRACTS_DIR)).resolve(),
            defs_dir=Path(os.environ.get(DEFS_ENV, DEFAULT_DEFS_DIR)).resolve(),
            version_retention_hours=int(os.environ.get(RETENTION_ENV, str(24 * 30))),
            reader_grace_hours=float(os.environ.get(READER_GRACE_ENV, "24")),
            catalog_lock_seconds=float(os.environ.get(CATALOG_LOCK_ENV, "60")),
            retrain_min_interval_seconds=int(os.environ.get(RETRAIN_INTERVAL_ENV, "600")),
            landing_quiet_seconds=float(os.environ.get(QUIET_ENV, "5")),
            landing_retry_seconds=float(os.environ.get(RETRY_ENV, "60")),
            landing_stuck_seconds=float(os.environ.get(STUCK_ENV, "3600")),
            freshness_hours=float(os.environ.get(FRESHNESS_ENV, "26")),
            alert_urls=os.environ.get(ALERT_URLS_ENV, ""),
            alert_group_seconds=float(os.environ.get(ALERT_GROUP_ENV, "30")),
            ui_url=os.environ.get(UI_URL_ENV, "http://127.0.0.1:3000").rstrip("/"),
            memory_limit_bytes=memory_limit_bytes(),
        )

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def spill_dir(self) -> Path:
        return spill_dir(self.data_dir)


def embedded_lake(data_dir: Path) -> tuple[str, str]:
    """(catalog, data path) of the lake kept inside a data directory: ``lake.sqlite`` and ``lake/``."""
    return f"sqlite:{data_dir / 'lake.sqlite'}", f"{data_dir / 'lake'}/"


def spill_dir(data_dir: Path) -> Path:
    """Where DuckDB writes what does not fit its memory share: inside the data directory, never /tmp."""
    return data_dir / "tmp" / "spill"


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def memory_limit_bytes() -> int:
    """PLATFORM_MEMORY_LIMIT (``4GB``, ``3.5GiB``, ``800MB``, bytes), else a share of the machine's memory."""
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if not text:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * DEFAULT_MEMORY_SHARE)
    number = text.rstrip("KMGTiBkmgtib ")
    unit = text[len(number):].strip().upper()
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError(f"{MEMORY_LIMIT_ENV}={text!r}: write a size such as 4GB, 3.5GiB or 800MB") from None
    if value < 256 * 2**20:
        raise ValueError(f"{MEMORY_LIMIT_ENV}={text!r}: a run needs at least 256MB")
    return int(value)
