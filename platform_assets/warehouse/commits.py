"""Writing to the lake: one transaction per change, labelled, and tried again when another writer won.

Every commit to DuckLake is a snapshot; the label (commit message and extra
info) says what the change was and which Dagster run made it, so ``versions``
and the UI lead from a materialization to its exact snapshot.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

LAKE = "lake"
# A write that lost a race with another writer is tried again this often, waiting about twice as long each time.
CONFLICT_ATTEMPTS = 8
CONFLICT_FIRST_WAIT_SECONDS = 0.2
T = TypeVar("T")


def write(conn: duckdb.DuckDBPyConnection, work: Callable[[], T], *, log=None) -> T:
    """Run ``work`` in one lake transaction (one snapshot): all of it commits, or none of it.

    Another writer may commit first and make this commit conflict (PostgreSQL
    catalog: "Transaction conflict"; SQLite catalog: "database is locked").
    Nothing of this attempt was committed then, so ``work`` runs again on the
    newer snapshot, after a short random wait; each retry is logged.
    """
    wait, attempt = CONFLICT_FIRST_WAIT_SECONDS, 1
    while True:
        conn.begin()
        try:
            result = work()
            conn.commit()
            return result
        except BaseException as error:
            _rollback(conn)
            if not is_conflict(error) or attempt == CONFLICT_ATTEMPTS:
                raise
            conflict = str(error).splitlines()[-1]
        attempt += 1
        if log is not None:
            log.warning(f"lake commit conflicted with another writer, retrying (attempt {attempt} of "
                        f"{CONFLICT_ATTEMPTS}): {conflict}")
        time.sleep(wait * random.uniform(0.5, 1.5))
        wait *= 2


def is_conflict(error: BaseException) -> bool:
    """Another writer won: DuckLake's conflict check failed the commit, or the SQLite catalog was busy."""
    if not isinstance(error, duckdb.Error):
        return False
    message = str(error)
    return "conflict" in message.lower() or "database is locked" in message


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
