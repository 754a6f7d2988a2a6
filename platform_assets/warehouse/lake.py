"""Opening the lake: DuckDB with the DuckLake catalog attached, once per process.

DuckDB itself holds nothing (an in-memory database); every table lives in the
DuckLake attached as ``lake`` and made the default catalog, so SQL says
``raw.sales`` and Soda's ``warehouse/raw/sales`` resolve to it. The catalog is a
SQLite file under ``data/`` by default (one writer at a time, readers never
wait) or a PostgreSQL database in production (many writers); the rows are
Parquet files under the data path.

DuckDB's extensions cannot be downloaded here: they are loaded straight from
the PyPI wheels that ship the official signed binaries, nothing is installed.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from platform_assets import disk_space
from platform_assets.settings import Settings, embedded_lake, memory_limit_bytes, spill_dir
from platform_assets.warehouse import catalog, object_storage
from platform_assets.warehouse.commits import LAKE

# How a run's memory limit is shared: DuckDB's buffers (beyond them it spills to disk), the Polars
# frames of one chunk being transformed (plus the finished chunk being written, about a tenth of
# that: ``tables.computed_ahead``), and the rest for the interpreter and its libraries (~400 MB).
DUCKDB_SHARE = 0.4
CHUNK_SHARE = 0.3
# the peak memory a chunk costs per row while it is transformed and written: ~650 MB for the
# features of 500,000 rows (benchmarks/pipeline.py, 1x and 4x)
CHUNK_BYTES_PER_ROW = 1300
MIN_CHUNK_ROWS = 100_000
# what the single DuckDB file of earlier versions left in the data directory
OLD_LAYOUT = ("warehouse.duckdb", "versions")
_ATTACHED: dict[tuple, duckdb.DuckDBPyConnection] = {}
_ATTACHING = threading.Lock()


class LakeError(dg.Failure):
    """The lake cannot be opened as configured; the description says what to do."""


class Warehouse(DuckDBResource):
    """The lake every layer lives in: a DuckLake catalog plus its Parquet data path.

    ``catalog`` is DuckLake's metadata database (``sqlite:<file>`` embedded,
    ``postgres:dbname=<db> ...`` in production, with the password from libpq's
    ``PGPASSWORD``); ``data_path`` holds the Parquet files. ``read_only`` attaches
    the lake so that no statement can change it, in a DuckDB locked by DuckDB's own
    controls: no file outside the lake's data path, no extension loaded, no setting
    changed (``reader.py`` adds what those controls leave open).
    """

    database: str = Field(default=":memory:", description="DuckDB itself keeps nothing; the tables live in the lake")
    catalog: str = Field(description="DuckLake catalog: sqlite:<path> or postgres:<libpq connection string>")
    data_path: str = Field(description="where the lake's Parquet files live (a folder, or an object-store URL)")
    read_only: bool = False
    version_retention_hours: int = 24 * 30
    reader_grace_hours: float = 24
    memory_limit_bytes: int = Field(default_factory=memory_limit_bytes,
                                    description="what a run may use in all (PLATFORM_MEMORY_LIMIT)")
    spill_dir: str = Field(default="", description="where DuckDB spills beyond its memory share (default: "
                                                   "tmp/spill in PLATFORM_DATA_DIR)")

    @classmethod
    def embedded(cls, data_dir: Path | str, **kwargs) -> Warehouse:
        """The default lake of a data directory: ``lake.sqlite`` and ``lake/`` inside it."""
        catalog, data_path = embedded_lake(Path(data_dir).resolve())
        return cls(catalog=catalog, data_path=data_path, **{"spill_dir": str(spill_dir(Path(data_dir).resolve())),
                                                            **kwargs})

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs) -> Warehouse:
        return cls(catalog=settings.lake_catalog, data_path=settings.lake_data_path,
                   version_retention_hours=settings.version_retention_hours,
                   reader_grace_hours=settings.reader_grace_hours, memory_limit_bytes=settings.memory_limit_bytes,
                   spill_dir=str(settings.spill_dir), **kwargs)

    @property
    def rows_per_chunk(self) -> int:
        """How many rows a full rebuild transforms at a time, so that one chunk fits its share of the limit."""
        return max(MIN_CHUNK_ROWS, int(self.memory_limit_bytes * CHUNK_SHARE / CHUNK_BYTES_PER_ROW))

    @property
    def is_embedded(self) -> bool:
        return self.catalog.startswith("sqlite:")

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection of its own (own transactions, own temp tables) to the lake, closed on errors too."""
        conn = self._attached().cursor()
        try:
            try:
                conn.execute(f"USE {LAKE}")
            except duckdb.Error as error:  # e.g. SQLite cannot create its -wal/-shm files on a full disk
                if "disk I/O error" not in str(error) and not disk_space.is_out_of_space(error):
                    raise
                raise self._unreadable(error) from None
            yield conn
        finally:
            conn.close()

    def _unreadable(self, error: duckdb.Error) -> LakeError:
        message = str(error).splitlines()[0]
        if self.is_embedded:
            message += f" ({disk_space.free(Path(self.catalog.removeprefix('sqlite:'))):,} bytes free on its disk)"
        return LakeError(description=f"cannot read the lake's catalog {self._shown_catalog}: {message}")

    def _attached(self) -> duckdb.DuckDBPyConnection:
        """This process's DuckDB with the extensions loaded and the lake attached (and its layout created).

        Kept for the process: loading the extensions costs ~0.2 s per DuckDB, a cursor of it nothing,
        and a run opens the lake once per step.
        """
        identity = os.environ.get("AWS_ACCESS_KEY_ID") if object_storage.is_s3(self.data_path) else None
        key = (os.getpid(), self.catalog, self.data_path, self.read_only, identity)
        with _ATTACHING:
            if key not in _ATTACHED:
                self._prepare()
                conn = duckdb.connect(self.database, config=self.connection_config)
                try:
                    self._limit_memory(conn)
                    for extension in self._extensions:
                        conn.execute(f"LOAD '{extension_file(extension)}'")
                    if object_storage.is_s3(self.data_path):
                        _add_s3_secret(conn)
                    options = f"DATA_PATH '{self.data_path}'" + (", READ_ONLY" if self.read_only else "")
                    try:
                        conn.execute(f"ATTACH 'ducklake:{self.catalog}' AS {LAKE} ({options})")
                    except duckdb.Error as error:
                        raise LakeError(description=f"cannot open the lake (catalog {self._shown_catalog}, data "
                                                    f"{self.data_path}): {str(error).splitlines()[0]}") from None
                    conn.execute(f"USE {LAKE}")
                    if self.read_only:
                        _lock_down(conn, self.data_path)
                    else:
                        catalog.bootstrap(conn)
                except BaseException:
                    conn.close()
                    raise
                _ATTACHED[key] = conn
            return _ATTACHED[key]

    def reach_object_storage(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Let this DuckDB read objects (a landed file in a bucket) with the process's S3 identity.

        Already so when the lake itself is on S3; a reader's locked-down DuckDB never is.
        """
        if object_storage.is_s3(self.data_path):
            return
        conn.execute(f"LOAD '{extension_file('httpfs')}'")
        _add_s3_secret(conn)

    def _limit_memory(self, conn: duckdb.DuckDBPyConnection) -> None:
        """DuckDB keeps to its share of the run's memory limit and spills the rest under the data directory."""
        conn.execute(f"SET memory_limit = '{int(self.memory_limit_bytes * DUCKDB_SHARE) // 2**20}MiB'")
        if self.read_only:
            return  # a reader's DuckDB writes no file at all (see _lock_down); a query that does not fit fails
        folder = Path(self.spill_dir) if self.spill_dir else Settings.from_env().spill_dir
        folder.mkdir(parents=True, exist_ok=True)
        conn.execute(f"SET temp_directory = '{str(folder).replace(chr(39), chr(39) * 2)}'")

    @property
    def _extensions(self) -> list[str]:
        """DuckLake, the catalog's database client, and for object storage (s3://, gs://, ...) httpfs."""
        catalog_client = "sqlite_scanner" if self.is_embedded else "postgres_scanner"
        return ["ducklake", catalog_client] + (["httpfs"] if "://" in self.data_path else [])

    def _prepare(self) -> None:
        """Embedded: refuse a data directory of the old layout; create the catalog file in WAL mode.

        WAL lets readers (a notebook, a BI tool) read while a run writes, without either waiting.
        """
        if not self.is_embedded:
            return
        catalog = Path(self.catalog.removeprefix("sqlite:"))
        old = [name for name in OLD_LAYOUT if (catalog.parent / name).exists()]
        if old:
            raise LakeError(description=(
                f"{catalog.parent} holds {' and '.join(old)}, the single-file warehouse of an earlier version of "
                "the platform; the tables now live in a DuckLake (lake.sqlite + lake/). The old data cannot be "
                "carried over: run `make clean` (or remove that directory) and land the files again."))
        if catalog.exists():
            return
        if self.read_only:
            raise LakeError(description=f"there is no lake at {catalog} yet: nothing was loaded into this data "
                                        "directory (land a file first, or check PLATFORM_DATA_DIR)")
        catalog.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(catalog)) as sqlite:
            sqlite.execute("PRAGMA journal_mode=WAL")

    @property
    def _shown_catalog(self) -> str:
        """The catalog as it may be logged: a password written into it is masked."""
        return " ".join("password=***" if part.lower().startswith("password=") else part
                        for part in self.catalog.split(" "))


def _add_s3_secret(conn: duckdb.DuckDBPyConnection) -> None:
    """This process's S3 identity as DuckDB's temporary secret; none in the environment is a LakeError."""
    try:
        conn.execute(object_storage.s3_secret_sql())
    except object_storage.MissingCredentials as error:
        raise LakeError(description=str(error)) from None


def _lock_down(conn: duckdb.DuckDBPyConnection, data_path: str) -> None:
    """Files outside the lake's data path, extensions and settings are refused from here on."""
    conn.execute(f"SET allowed_directories = ['{data_path.replace(chr(39), chr(39) * 2)}']")
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")


def extension_file(name: str) -> Path:
    """The signed extension binary inside its ``duckdb-extension-<name>`` wheel, for this DuckDB."""
    try:
        package = importlib.import_module(f"duckdb_extension_{name}")
    except ModuleNotFoundError:
        raise LakeError(description=f"DuckDB's {name} extension is not installed: "
                                    f"pip install duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}") from None
    return Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
