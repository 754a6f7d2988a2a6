"""``ops.landed_files``: every version of every landed file, what became of it, and whether it was verified.

One row per (file name, content). Of each name at most one version is ``loaded``:
its rows are the ones in raw. Loading a new version marks the one before it
``replaced``; a version that could not be parsed is ``quarantined``. Two times
drive the layers downstream:

- ``landed_at``: when this content first landed under this name. Overlapping files
  are resolved by it (the later landing wins), so re-loading an older file never
  undoes a correction that landed after it.
- ``verified_at``: when the version's blocking checks last all passed (NULL until
  then, or after they fail). Only verified versions are read into cleaned.

The table is created with the other ``ops`` tables (``catalog.py``).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

TABLE = "ops.landed_files"
# The versions cleaned may read: loaded, and their blocking checks passed.
VERIFIED = f"SELECT file_name, landed_at, verified_at FROM {TABLE} WHERE status = 'loaded' AND verified_at IS NOT NULL"


def landed_at(conn: duckdb.DuckDBPyConnection, name: str, content_hash: str) -> datetime | None:
    """When this content of ``name`` first landed, if it was loaded or quarantined before."""
    rows = conn.execute(f"SELECT landed_at FROM {TABLE} WHERE file_name = ? AND content_hash = ?",
                        [name, content_hash]).fetchall()
    return rows[0][0] if rows else None


def loaded_hash(conn: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The content hash of the version of ``name`` whose rows are in raw."""
    rows = conn.execute(f"SELECT content_hash FROM {TABLE} WHERE file_name = ? AND status = 'loaded'",
                        [name]).fetchall()
    return rows[0][0] if rows else None


def record_loaded(conn, name: str, *, kind: str, content_hash: str, size_bytes: int, rows: int,
                  landed_at: datetime) -> None:
    """Inside the transaction that replaces the file's rows: this version is loaded, not yet verified."""
    conn.execute(f"UPDATE {TABLE} SET status = 'replaced' WHERE file_name = ? AND status = 'loaded'", [name])
    _insert(conn, name, kind, content_hash, size_bytes, rows, "loaded", None, landed_at)


def record_quarantined(conn, name: str, *, kind: str, content_hash: str, size_bytes: int, reason: str,
                       landed_at: datetime) -> None:
    """This version could not be loaded; the version loaded before it (if any) stays loaded."""
    _insert(conn, name, kind, content_hash, size_bytes, None, "quarantined", reason, landed_at)


def set_verified(conn: duckdb.DuckDBPyConnection, names: list[str], passed: bool) -> None:
    """Record the outcome of the loaded versions' blocking checks: verified now, or not (any more)."""
    conn.execute(f"UPDATE {TABLE} SET verified_at = CASE WHEN $passed THEN now() END "
                 "WHERE status = 'loaded' AND list_contains($names, file_name)", {"passed": passed, "names": names})


def _insert(conn, name, kind, content_hash, size_bytes, rows, status, reason, landed_at) -> None:
    conn.execute(f"DELETE FROM {TABLE} WHERE file_name = ? AND content_hash = ?", [name, content_hash])
    conn.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ, now(), NULL)",
                 [name, kind, content_hash, size_bytes, rows, status, reason, landed_at])
