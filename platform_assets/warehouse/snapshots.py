"""Versions of a table are the lake's snapshots; a rollback restores one as a new snapshot.

Every materialization commits one DuckLake snapshot labelled with the table,
the run id, the row count, the data version and the layer's watermark
(``commits.set_commit_message``), so a version can be listed without reading
the table and a rollback can put the watermark back too. The rows of an old
version come from DuckLake's time travel (``AT (VERSION => n)``) until
maintenance expires that snapshot.
"""

from __future__ import annotations

import json
import dagster as dg
import duckdb

from platform_assets.warehouse import commits, digests, tables
from platform_assets.warehouse.commits import LAKE

class VersionError(Exception):
    """A version that does not exist or can no longer be restored; the message says which."""


def history(conn: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    """The table's versions still kept, newest first: snapshot number, time, and what its commit recorded."""
    entries = []
    for snapshot, time, message, extra in conn.execute(
            f"SELECT snapshot_id, snapshot_time, commit_message, commit_extra_info FROM {LAKE}.snapshots() "
            "WHERE commit_extra_info IS NOT NULL ORDER BY snapshot_id DESC").fetchall():
        try:
            info = json.loads(extra)
        except ValueError:  # a commit labelled by some other tool
            continue
        if isinstance(info, dict) and info.get("table") == table:
            entries.append({"version": snapshot, "time": time, "action": message,
                            **{k: info.get(k) for k in ("run_id", "rows", "data_version", "high_water")}})
    return entries


def rollback(conn: duckdb.DuckDBPyConnection, table: str, version: int, log=None) -> dict:
    """Put ``table`` back to its rows at ``version``, in one commit that is itself a new version.

    DELETE + INSERT (not CREATE OR REPLACE) keeps the table's identity, so its change
    feed goes on across the rollback. Every restored row counts as changed
    (``_updated_at``), so the next layer recomputes from the restored state.
    """
    known = history(conn, table)
    if known and not all(e["action"].startswith(("materialize", "rollback")) for e in known):
        raise VersionError(f"{table} is loaded from its files, not rolled back: land a corrected file "
                           "(its earlier versions stay in archive/)")
    entry = next((e for e in known if e["version"] == version), None)
    if entry is None:
        oldest = tables.scalar(conn, f"SELECT min(snapshot_id) FROM {LAKE}.snapshots()")
        if 0 <= version < oldest:  # snapshots count up from 0: one below the oldest kept existed once
            raise VersionError(f"{table} version {version} can no longer be restored: snapshots before {oldest} "
                               "were expired by maintenance (PLATFORM_VERSION_RETENTION_HOURS)")
        raise VersionError(f"{table} has no version {version}; versions: {sorted(e['version'] for e in known)}")

    def restore() -> dict:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _restored AS "
                     f"SELECT * REPLACE (now() AS _updated_at) FROM {table} AT (VERSION => {int(version)})")
        conn.execute(f"DELETE FROM {table}")
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _restored")
        conn.execute("DROP TABLE _restored")
        tables.set_watermark(conn, table, entry["high_water"])
        digests.recompute_digest(conn, table)
        done = {"table": table, "restored_version": version, "rows": tables.scalar(conn, f"SELECT count(*) FROM {table}"),
                "data_version": digests.data_version(conn, table)}
        commits.set_commit_message(conn, f"rollback to {version}", {
            "table": table, "run_id": None, "rows": done["rows"], "data_version": done["data_version"],
            "high_water": entry["high_water"]})
        return done

    done = commits.write(conn, restore, log=log)
    return done | {"new_version": commits.last_snapshot(conn)}


def record_rollback(instance: dg.DagsterInstance, done: dict) -> None:
    """Show the rollback in the UI as a materialization, so the layers downstream follow it."""
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=dg.AssetKey(done["table"].split(".")),
        description=f"Rolled back to snapshot {done['restored_version']} (committed as snapshot {done['new_version']}).",
        metadata={"action": f"rollback to version {done['restored_version']}", "snapshot": done["new_version"],
                  "data_version": done["data_version"], "dagster/row_count": done["rows"]},
    ))

