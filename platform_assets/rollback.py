"""Put a versioned table back to an earlier Delta version, as a new version of its own.

The restored rows replace the DuckDB table in one transaction together with the
layer's watermark of that version, so later incremental runs continue from
there. The rollback is published as a new Delta version (so it can itself be
rolled back) and, given a Dagster instance, recorded as a materialization so the
UI shows it and the layers downstream follow.
"""

import dagster as dg

from platform_assets import tables, versions
from platform_assets.resources import Warehouse

VERSIONED_TABLES = ("cleaned.sales", "features.sales_features")


def rollback(warehouse: Warehouse, table: str, version: int, instance: dg.DagsterInstance | None) -> dict:
    if table not in VERSIONED_TABLES:
        raise versions.VersionError(f"{table} is not versioned; versioned tables: {', '.join(VERSIONED_TABLES)}")
    restored = versions.read_version(warehouse.versions_path, table, version)
    (entry,) = [e for e in versions.history(warehouse.versions_path, table) if e["version"] == version]
    with warehouse.get_connection() as conn, tables.transaction(conn):
        conn.register("_restored", restored)
        # every row counts as changed, so the next layer recomputes from the restored state
        conn.execute(f"CREATE OR REPLACE TABLE {table} AS "
                     "SELECT * EXCLUDE (_updated_at), now() AS _updated_at FROM _restored")
        conn.unregister("_restored")
        tables.set_watermark(conn, table, entry["high_water"])
        versions.recompute_digest(conn, table)
        digest = versions.data_version(conn, table)
        number = versions.publish(conn, warehouse.versions_path, table, dates=None, commit={
            "action": f"rollback to {version}", "run_id": None, "rows": restored.height,
            "data_version": digest, "high_water": entry["high_water"]})
    result = {"table": table, "restored_version": version, "new_version": number,
              "rows": restored.height, "data_version": digest}
    if instance is not None:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=dg.AssetKey(table.split(".")),
            description=f"Rolled back to Delta version {version} (published as version {number}).",
            metadata={"action": f"rollback to version {version}", "delta_version": number,
                      "data_version": digest, "dagster/row_count": restored.height},
        ))
    return result
