"""``ops.landed_files``: what landed, with which content, and what became of it."""

from __future__ import annotations

from pathlib import Path

import duckdb

LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.landed_files (
    file_name    VARCHAR PRIMARY KEY,
    kind         VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    size_bytes   BIGINT NOT NULL,
    rows         BIGINT,
    status       VARCHAR NOT NULL CHECK (status IN ('loaded', 'quarantined')),
    reason       VARCHAR,
    loaded_at    TIMESTAMP WITH TIME ZONE NOT NULL
);
"""


def record(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    kind: str,
    content_hash: str,
    rows: int | None,
    status: str,
    reason: str | None = None,
) -> None:
    """Upsert the file's row; call inside the transaction that loads (or rejects) it."""
    conn.execute(LEDGER_DDL)
    conn.execute(
        "INSERT OR REPLACE INTO ops.landed_files VALUES (?, ?, ?, ?, ?, ?, ?, now())",
        [path.name, kind, content_hash, path.stat().st_size, rows, status, reason],
    )
