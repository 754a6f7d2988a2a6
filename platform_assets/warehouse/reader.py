"""Reading the lake from outside the pipeline: a notebook, a BI script, ``platform-assets sql``.

A reader reads the lake's tables and nothing else. Its DuckDB is the read-only
``Warehouse``'s, locked by DuckDB's own controls (no file outside the lake's data
path, no extension, no setting changed); on top, only statements that read run:
``SELECT`` (DuckDB parses ``DESCRIBE``, ``SHOW``, ``SUMMARIZE`` and ``FROM t`` as one)
and ``EXPLAIN`` of one. ``ATTACH``, ``COPY``, ``INSTALL``/``LOAD``, ``SET``, ``CALL``
and the rest are refused before anything runs, and so are the SQLite and PostgreSQL
scanners' table functions (and ``query()``, which could hide them): DuckDB's controls
alone would still let a statement attach the lake's catalog again, writable, write into
its data path, or read any SQLite file, since those extensions open files themselves.

``snapshot()`` gives a block whose statements all read one snapshot. Maintenance keeps
a snapshot whole while it is the newest and for ``PLATFORM_READER_GRACE_HOURS`` after
(``maintenance.py``). A block whose snapshot stopped being the newest longer ago than
that may have lost rows to maintenance, so each statement in it is refused, before and
after it runs, with a plain message: an error, never fewer rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from platform_assets.settings import Settings
from platform_assets.warehouse.commits import LAKE
from platform_assets.warehouse.lake import Warehouse

EXPLAIN = re.compile(r"\s*EXPLAIN\s+(?:ANALY[SZ]E\s+)?", re.IGNORECASE)
# table functions that reach outside the lake around DuckDB's file controls (or run SQL given as text)
OUTSIDE = re.compile(r"(sqlite|postgres)_\w+|query")


class ReadRefused(Exception):
    """A statement a reader may not run; the message says which, in one line."""


class SnapshotExpired(Exception):
    """A snapshot block read past the reader grace; the message says what to do."""


class LakeReader:
    """Read-only SQL on the lake, one statement (or a snapshot block) at a time; results as Polars frames."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse if warehouse.read_only else warehouse.model_copy(update={"read_only": True})

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LakeReader:
        return cls(Warehouse.from_settings(settings or Settings.from_env()))

    @classmethod
    def embedded(cls, data_dir: Path | str, **warehouse_settings) -> LakeReader:
        return cls(Warehouse.embedded(data_dir, **warehouse_settings))

    def sql(self, query: str, params=None) -> pl.DataFrame:
        """Run ``query`` (one or more read statements, each on the newest snapshot); the last one's result."""
        with self.warehouse.get_connection() as conn:
            return _run(conn, query, params)

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """A block whose statements all read the snapshot that is the newest when it opens."""
        with self.warehouse.get_connection() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield Snapshot(self.warehouse, conn)
            finally:
                conn.execute("ROLLBACK")  # a reader changed nothing


class Snapshot:
    """The statements of one ``LakeReader.snapshot()`` block."""

    def __init__(self, warehouse: Warehouse, conn: duckdb.DuckDBPyConnection):
        self.warehouse, self._conn = warehouse, conn
        self.version = conn.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchall()[0][0]

    def sql(self, query: str, params=None) -> pl.DataFrame:
        self._still_whole()
        result = _run(self._conn, query, params)
        self._still_whole()  # maintenance may have expired the snapshot while the statement ran
        return result

    def _still_whole(self) -> None:
        """Refuse once the snapshot may have been expired; asked on a connection of its own, which sees the newest."""
        grace = self.warehouse.reader_grace_hours
        with self.warehouse.get_connection() as newest:
            superseded, expirable = newest.execute(
                f"SELECT min(snapshot_time), min(snapshot_time) < now() - to_seconds(?) FROM {LAKE}.snapshots() "
                "WHERE snapshot_id > ?", [grace * 3600, self.version]).fetchall()[0]
        if expirable:
            raise SnapshotExpired(
                f"this block reads snapshot {self.version}, which stopped being the newest at "
                f"{superseded:%Y-%m-%d %H:%M:%S %Z}, more than the reader grace ago ({grace:g} h, "
                "PLATFORM_READER_GRACE_HOURS): lake maintenance may have removed some of its rows. "
                "Open a new snapshot block.")


def _run(conn: duckdb.DuckDBPyConnection, query: str, params) -> pl.DataFrame:
    statements = duckdb.extract_statements(query)
    if not statements:
        raise ReadRefused("there is no statement to run")
    for statement in statements:
        _require_read(conn, statement)
    if params is not None and len(statements) > 1:
        raise ReadRefused("parameters go with a single statement")
    for statement in statements[:-1]:
        conn.execute(statement).fetchall()
    return conn.execute(statements[-1], params).pl()


def _require_read(conn: duckdb.DuckDBPyConnection, statement) -> None:
    """Refuse, in one line, a statement that is not a read of the lake."""
    kind, text = statement.type, statement.query
    if kind == duckdb.StatementType.EXPLAIN:
        explained = EXPLAIN.match(text)
        inner = duckdb.extract_statements(text[explained.end():]) if explained else []
        if len(inner) != 1 or inner[0].type != duckdb.StatementType.SELECT:
            raise ReadRefused("EXPLAIN is allowed of a query only: a reader only reads the lake's tables")
        kind, text = inner[0].type, inner[0].query
    if kind != duckdb.StatementType.SELECT:
        keyword = text.split(maxsplit=1)[0].upper() if text.split() else kind.name
        raise ReadRefused(f"{keyword if keyword.isalpha() else kind.name} statements are refused: a reader only reads "
                          "the lake's tables (SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)")
    tree = json.loads(conn.execute("SELECT json_serialize_sql(?)", [text]).fetchall()[0][0])
    for name in _table_functions(tree):
        if OUTSIDE.fullmatch(name):
            raise ReadRefused(f"{name}() is refused: it reads outside the lake's tables")


def _table_functions(node) -> Iterator[str]:
    """The names of the table functions a parsed statement (DuckDB's JSON form) calls, nested ones too."""
    if isinstance(node, dict):
        if node.get("type") == "TABLE_FUNCTION":
            yield node.get("function", {}).get("function_name", "")
        for value in node.values():
            yield from _table_functions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _table_functions(value)
