"""The two things assets touch: the DuckDB warehouse and the landing zone."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from platform_assets.settings import Settings


class Warehouse(DuckDBResource):
    """The DuckDB file all layers live in (one schema per layer), and the Delta history of its tables.

    Versions live in ``versions/`` beside the DuckDB file unless ``versions_dir`` says otherwise.
    """

    versions_dir: str | None = None
    version_retention_hours: int = 24 * 30

    @classmethod
    def from_settings(cls, settings: Settings) -> "Warehouse":
        return cls(database=str(settings.warehouse_path), version_retention_hours=settings.version_retention_hours)

    @property
    def versions_path(self) -> Path:
        return Path(self.versions_dir) if self.versions_dir else Path(self.database).parent / "versions"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The parent's connection (with its retry on a locked file), closed on errors too.

        The parent closes only on success; a failed step would keep the file open.
        """
        with super().get_connection() as conn:
            try:
                yield conn
            finally:
                conn.close()


class LandingZone(dg.ConfigurableResource):
    """The folder upstream drops files into, with archive/ and quarantine/ beside it.

    A file is loaded from landing/ (or from archive/ when a partition is
    re-materialized), archived once its rows are committed, and quarantined with
    a ``<name>.reason.txt`` when it cannot be loaded.
    """

    data_dir: str

    @property
    def landing(self) -> Path:
        return Path(self.data_dir) / "landing"

    @property
    def archive(self) -> Path:
        return Path(self.data_dir) / "archive"

    @property
    def quarantine(self) -> Path:
        return Path(self.data_dir) / "quarantine"

    def landed_files(self) -> list[Path]:
        """Files waiting in landing/, oldest name first; hidden temp files are still being written."""
        if not self.landing.is_dir():
            return []
        return sorted(p for p in self.landing.iterdir() if p.is_file() and not p.name.startswith("."))

    def locate(self, name: str) -> Path:
        for folder in (self.landing, self.archive):
            if (folder / name).is_file():
                return folder / name
        reason = self.quarantine / f"{name}.reason.txt"
        if reason.is_file():
            raise FileNotFoundError(f"{name} was quarantined: {reason.read_text().strip()}")
        raise FileNotFoundError(f"{name} is neither in {self.landing} nor in {self.archive}")

    def holds_identical(self, folder: Path, path: Path, digest: str) -> bool:
        """Whether ``folder`` has a file of the same name with content hash ``digest``."""
        copy = folder / path.name
        return copy != path and copy.is_file() and content_hash(copy) == digest

    def move_to_archive(self, path: Path) -> Path:
        return self._move(path, self.archive)

    def move_to_quarantine(self, path: Path, reason: str) -> Path:
        """Write the reason first, so a quarantined file never lacks one."""
        self.quarantine.mkdir(parents=True, exist_ok=True)
        (self.quarantine / f"{path.name}.reason.txt").write_text(reason + "\n")
        return self._move(path, self.quarantine)

    @staticmethod
    def _move(path: Path, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        if path != target:
            os.replace(path, target)
        return target


class ModelStore(dg.ConfigurableResource):
    """Where trained model artifacts are kept (``data/models/`` by default)."""

    models_dir: str

    @property
    def path(self) -> Path:
        return Path(self.models_dir)


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes: the identity of a landed file's content."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
