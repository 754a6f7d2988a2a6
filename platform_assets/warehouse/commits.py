"""Writing to the lake: one transaction per change, labelled, and tried again when another writer won.

Every commit to DuckLake is a snapshot; the label (commit message and extra
info) says what the change was and which Dagster run made it, so ``versions``
and the UI lead from a materialization to its exact snapshot.

Two ways a commit can fail that are nobody's fault in the data, each retried:
another writer committed first (a DuckLake conflict: the work runs again on the
newer snapshot), or another process holds a lock on the SQLite catalog file (a
backup, a stray ``sqlite3`` shell): waited for, with back-off, for
``PLATFORM_CATALOG_LOCK_SECONDS``, then one plain message naming the file.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import TypeVar

import dagster as dg
import duckdb

from platform_assets.settings import CATALOG_LOCK_ENV, Settings

LAKE = "lake"
# A write that lost a race with another writer is tried again this often, waiting about twice as long each time.
CONFLICT_ATTEMPTS = 8
CONFLICT_FIRST_WAIT_SECONDS = 0.2
# While the catalog file is locked, the wait between attempts doubles up to this.
LOCK_MAX_WAIT_SECONDS = 5.0
T = TypeVar("T")


class CatalogLocked(dg.Failure):
    """Another process held the catalog file locked for longer than the lock window; nothing was committed."""


def write(conn: duckdb.DuckDBPyConnection, work: Callable[[], T], *, log=None) -> T:
    """Run ``work`` in one lake transaction (one snapshot): all of it commits, or none of it.

    Nothing of a failed attempt was committed, so ``work`` runs again, on the newer
    snapshot: after a short random wait when another writer committed first, and
    while the catalog file is locked, until the lock window is over. Each retry is logged.
    """
    wait, attempt, locked_since = CONFLICT_FIRST_WAIT_SECONDS, 1, None
    while True:
        conn.begin()
        try:
            result = work()
            conn.commit()
            return result
        except BaseException as error:
            _rollback(conn)
            if is_locked(error):
                locked_since = locked_since or time.monotonic()
                waited, window = time.monotonic() - locked_since, Settings.from_env().catalog_lock_seconds
                if waited >= window:
                    raise CatalogLocked(description=(
                        f"the lake's catalog {catalog_file(conn)} is locked by another process (SQLite: database is "
                        f"locked) and stayed locked for {waited:.0f} s, longer than {CATALOG_LOCK_ENV}={window:g}; "
                        "nothing was committed. Find the process holding it (e.g. `fuser` on that file); a file's "
                        "load is tried again by the landing sensor.")) from None
                pause = min(wait, LOCK_MAX_WAIT_SECONDS, window - waited)
                if log is not None:
                    log.warning(f"the lake's catalog {catalog_file(conn)} is locked by another process; trying again "
                                f"in {pause:.1f} s ({waited:.0f} of {window:g} s waited)")
            elif is_conflict(error) and attempt < CONFLICT_ATTEMPTS:
                attempt += 1
                pause = wait * random.uniform(0.5, 1.5)
                if log is not None:
                    log.warning(f"lake commit conflicted with another writer, retrying (attempt {attempt} of "
                                f"{CONFLICT_ATTEMPTS}): {str(error).splitlines()[-1]}")
            else:
                raise
        time.sleep(pause)
        wait *= 2


def is_conflict(error: BaseException) -> bool:
    """Another writer won: DuckLake's conflict check failed the commit."""
    return isinstance(error, duckdb.Error) and "conflict" in str(error).lower()


def is_locked(error: BaseException) -> bool:
    """Another process holds the SQLite catalog file locked (a writer of ours, or anything else)."""
    return isinstance(error, duckdb.Error) and "database is locked" in str(error)


def catalog_file(conn: duckdb.DuckDBPyConnection) -> str:
    """The SQLite catalog file the lake is attached from (only a SQLite catalog is ever "locked")."""
    rows = conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = ?", [LAKE]).fetchall()
    return rows[0][0].removeprefix("sqlite:") if rows and rows[0][0] else "(unknown)"


def set_commit_message(conn: duckdb.DuckDBPyConnection, message: str, info: dict) -> None:
    """Label the snapshot the open transaction will commit: what it was and the run that made it."""
    conn.execute(f"CALL {LAKE}.set_commit_message('platform_assets', ?, extra_info => ?)",
                 [message, json.dumps(info, default=str)])


def last_snapshot(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The snapshot this connection committed last (not whatever another writer committed since)."""
    rows = conn.execute(f"SELECT * FROM ducklake_last_committed_snapshot('{LAKE}')").fetchall()
    return rows[0][0] if rows else None


def _rollback(conn: duckdb.DuckDBPyConnection) -> None:
    try:
        conn.rollback()
    except duckdb.Error:  # the failed commit already ended the transaction
        pass
