"""Keeping the lake small: daily loads leave many small files and snapshots behind.

In order: merge adjacent small files of each table, rewrite files that are
mostly deleted rows, expire snapshots older than the retention (their versions
can no longer be restored), delete the files no remaining snapshot needs, and
delete orphans (files of writes that never committed, e.g. a killed run) once
they are old enough that no running write can still be making them.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from platform_assets.warehouse import commits
from platform_assets.warehouse.commits import LAKE

# A file no snapshot knows of may belong to a write still in progress; only older ones are orphans.
ORPHAN_GRACE_HOURS = 24
STEPS = {
    "merged": f"CALL ducklake_merge_adjacent_files('{LAKE}')",
    "rewritten": f"CALL ducklake_rewrite_data_files('{LAKE}')",
    "snapshots_expired": f"CALL ducklake_expire_snapshots('{LAKE}', older_than => now() - to_hours($hours))",
    "files_deleted": f"CALL ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)",
    "orphans_deleted": f"CALL ducklake_delete_orphaned_files('{LAKE}', older_than => now() - to_hours($grace))",
}


def maintain(conn: duckdb.DuckDBPyConnection, data_path: str, retention_hours: int, log=None) -> dict:
    """Run every step (each its own commit, retried on a conflict); return what it did and the sizes before/after."""
    before = footprint(conn, data_path)
    done = {}
    for name, sql in STEPS.items():
        params = {k: v for k, v in {"hours": retention_hours, "grace": ORPHAN_GRACE_HOURS}.items() if f"${k}" in sql}
        done[name] = len(commits.write(conn, lambda sql=sql, params=params: conn.execute(sql, params).fetchall(),
                                       log=log))
        if log is not None:
            log.info(f"{name.replace('_', ' ')}: {done[name]}")
    after = footprint(conn, data_path)
    return done | {f"{k}_before": v for k, v in before.items()} | {f"{k}_after": v for k, v in after.items()}


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
