"""Keeping the lake small without taking anything from its readers.

Daily loads leave many small files and snapshots behind. Each step below is
bounded by one promise: a reader never sees fewer rows than its snapshot holds.

- **compacted**: a table's small files are written once more as one file, in an
  ordinary commit that ends them. Snapshots before it keep reading the small files
  until they expire. (DuckLake's own ``ducklake_merge_adjacent_files`` deletes the
  small files' catalog rows at once; with the SQLite catalog a transaction open at
  that moment then reads none of their rows, without an error:
  ``docs/notes/sqlite-catalog-open-transactions.md``.)
- **rewritten**: files that are mostly deleted rows, rewritten by DuckLake, which
  ends them the same way.
- **snapshots_expired**: a snapshot older than the retention, and no longer the
  newest for longer than the reader grace. Readers start on the newest snapshot, so
  one that stopped being the newest within the grace may still be read.
- **files_deleted**: files no remaining snapshot reads, once the grace has passed
  since that became so.
- **orphans_deleted**: files of writes that never committed (a killed run, a full
  disk), once no running write can still be making them.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from platform_assets.warehouse import commits
from platform_assets.warehouse.commits import LAKE

# A file no snapshot knows of may belong to a write still in progress; only older ones are orphans.
ORPHAN_GRACE_HOURS = 24
# Files below this size are compacted once a table has this many of them: a daily load adds one
# file per table, so a table is compacted about weekly and rewrites at most ~8 files' worth.
SMALL_FILE_BYTES = 8 << 20
MIN_SMALL_FILES = 8


def maintain(conn: duckdb.DuckDBPyConnection, data_path: str, retention_hours: float, grace_hours: float,
             log=None) -> dict:
    """Run every step (each its own commit, retried on a conflict); return what it did and the sizes before/after."""
    before = footprint(conn, data_path)
    retention, grace = retention_hours * 3600, grace_hours * 3600
    steps = {
        "compacted": lambda: sum(compact(conn, schema, table, log) for schema, table in lake_tables(conn)),
        "rewritten": lambda: _call(conn, f"CALL ducklake_rewrite_data_files('{LAKE}')", log=log),
        "snapshots_expired": lambda: _expire(conn, retention, grace, log),
        "files_deleted": lambda: _call(
            conn, f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => now() - to_seconds($grace))",
            {"grace": grace}, log),
        "orphans_deleted": lambda: _call(
            conn, f"CALL ducklake_delete_orphaned_files('{LAKE}', older_than => now() - to_hours($grace))",
            {"grace": ORPHAN_GRACE_HOURS}, log),
    }
    done = {}
    for name, step in steps.items():
        done[name] = step()
        if log is not None:
            log.info(f"{name.replace('_', ' ')}: {done[name]}")
    after = footprint(conn, data_path)
    return done | {f"{k}_before": v for k, v in before.items()} | {f"{k}_after": v for k, v in after.items()}


def lake_tables(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return conn.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
                        "ORDER BY ALL", [LAKE]).fetchall()


def compact(conn: duckdb.DuckDBPyConnection, schema: str, table: str, log=None) -> int:
    """Write the table's small files (if there are enough) once more as one; return how many were compacted.

    The rows are copied as they are (load times and all), so the table's content and its
    data version do not change; only its files do. Rows are picked by DuckLake's
    ``filename`` virtual column, which a real column of that name would hide: such a
    table is left alone.
    """
    if "filename" in {c for (c,) in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? AND table_name = ?",
            [LAKE, schema, table]).fetchall()}:
        if log is not None:
            log.warning(f"{schema}.{table} has a column named filename; its files are not compacted")
        return 0

    def rewrite() -> int:
        small = [path for path, size in conn.execute(
            f"SELECT data_file, data_file_size_bytes FROM ducklake_list_files('{LAKE}', ?, schema => ?)",
            [table, schema]).fetchall() if size < SMALL_FILE_BYTES]
        if len(small) < MIN_SMALL_FILES:
            return 0
        conn.execute("CREATE OR REPLACE TEMP TABLE _compacted AS SELECT unnest(?::VARCHAR[]) AS path", [small])
        conn.execute(f'INSERT INTO "{schema}"."{table}" SELECT * FROM "{schema}"."{table}" '
                     "WHERE filename IN (SELECT path FROM _compacted)")
        conn.execute(f'DELETE FROM "{schema}"."{table}" WHERE filename IN (SELECT path FROM _compacted)')
        conn.execute("DROP TABLE _compacted")
        commits.set_commit_message(conn, f"compact {schema}.{table}", {"maintenance": "compact", "files": len(small)})
        return len(small)

    return commits.write(conn, rewrite, log=log)


def expirable(conn: duckdb.DuckDBPyConnection, retention_seconds: float, grace_seconds: float) -> list[int]:
    """Snapshots older than the retention that stopped being the newest more than the grace ago."""
    return [s for (s,) in conn.execute(f"""
        SELECT snapshot_id FROM (
            SELECT snapshot_id, snapshot_time,
                   lead(snapshot_time) OVER (ORDER BY snapshot_id) AS superseded_at
            FROM {LAKE}.snapshots())
        WHERE snapshot_time < now() - to_seconds($retention) AND superseded_at < now() - to_seconds($grace)
        ORDER BY 1""", {"retention": retention_seconds, "grace": grace_seconds}).fetchall()]


def _expire(conn: duckdb.DuckDBPyConnection, retention_seconds: float, grace_seconds: float, log) -> int:
    def expire() -> int:
        versions = expirable(conn, retention_seconds, grace_seconds)
        if versions:
            conn.execute(f"CALL ducklake_expire_snapshots('{LAKE}', versions => ?)", [versions]).fetchall()
        return len(versions)

    return commits.write(conn, expire, log=log)


def _call(conn: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None, log=None) -> int:
    return len(commits.write(conn, lambda: conn.execute(sql, params or {}).fetchall(), log=log))


def footprint(conn: duckdb.DuckDBPyConnection, data_path: str) -> dict:
    """Snapshots, the data files the current snapshot reads, and (for a local data path) files and bytes on disk."""
    snapshots = conn.execute(f"SELECT count(*) FROM {LAKE}.snapshots()").fetchall()[0][0]
    live_files, live_bytes = conn.execute(
        f"SELECT count(*), coalesce(sum(file_size_bytes), 0) FROM __ducklake_metadata_{LAKE}.ducklake_data_file "
        "WHERE end_snapshot IS NULL").fetchall()[0]
    result = {"snapshots": snapshots, "live_data_files": live_files, "live_data_bytes": int(live_bytes)}
    if "://" not in data_path:
        files = [Path(folder, name) for folder, _, names in os.walk(data_path) for name in names]
        result |= {"files_on_disk": len(files), "bytes_on_disk": sum(f.stat().st_size for f in files)}
    return result
