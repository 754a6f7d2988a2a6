"""Watch the landing folder and start a load for every new or changed file.

Each sales file becomes a dynamic partition of ``raw/sales`` named after the
file; a new or changed store master re-materializes ``raw/stores``. The cursor
remembers the content hash requested per file name, and run keys carry the
hash, so the same content is never loaded twice:

- the same file landing again (same name, same content) is dropped from landing
  once its loaded copy is in archive/ (or re-quarantined if it was bad);
- the same content under another name is quarantined as a duplicate;
- a file with a name the platform does not know is quarantined;
- hidden files (``.name.tmp``) are still being written and are left alone;
- sales files wait until the store master has been loaded once: their checks
  verify every store against it.

The sensor never opens the warehouse: DuckDB allows one process at a time.
"""

import json

import dagster as dg

from platform_assets import rossmann
from platform_assets.assets.raw import raw_sales, raw_stores, sales_files
from platform_assets.resources import LandingZone, content_hash
from platform_assets.settings import Settings


@dg.sensor(
    name="landing_sensor",
    description="Starts a raw load for every new or changed file in the landing folder.",
    minimum_interval_seconds=Settings.from_env().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=[raw_sales, raw_stores],
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    requested: dict[str, str] = json.loads(context.cursor or "{}")
    stores_loaded = context.instance.get_latest_materialization_event(raw_stores.key) is not None
    runs, new_partitions = [], []
    for path in landing.landed_files():
        name = path.name
        schema = rossmann.file_schema_for(name)
        if schema is rossmann.SALES and not stores_loaded:
            context.log.info(f"{name} waits until the store master ({rossmann.STORES_FILE}) has been loaded")
            continue
        if schema is None:
            reason = (f"{name}: not a file the platform knows; expected {rossmann.STORES_FILE} "
                      "or sales_<YYYY-MM-DD>[_<YYYY-MM-DD>].csv")
            landing.move_to_quarantine(path, reason)
            context.log.warning(f"quarantined {reason}")
            continue
        digest = content_hash(path)
        if requested.get(name) == digest:
            _drop_if_already_handled(context, landing, path, digest)
            continue
        twin = next((other for other, h in requested.items() if h == digest and other != name), None)
        if twin is not None:
            reason = f"{name}: same content as {twin}, which already landed; not loaded twice"
            landing.move_to_quarantine(path, reason)
            context.log.warning(f"quarantined {reason}")
            continue

        requested[name] = digest
        run_key = f"{name}@{digest[:16]}"
        if schema is rossmann.SALES:
            if not context.instance.has_dynamic_partition(sales_files.name, name):
                new_partitions.append(name)
            runs.append(dg.RunRequest(run_key=run_key, partition_key=name, asset_selection=[raw_sales.key]))
        else:
            runs.append(dg.RunRequest(run_key=run_key, asset_selection=[raw_stores.key]))
        context.log.info(f"requesting a load of {name} (sha256 {digest[:12]})")
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[sales_files.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(requested, sort_keys=True),
    )


def _drop_if_already_handled(context, landing: LandingZone, path, digest: str) -> None:
    """A re-landed copy of a handled file: archived -> drop it, quarantined -> back to quarantine.

    A file whose load is still pending has neither copy and stays where its run will find it.
    """
    if landing.holds_identical(landing.archive, path, digest):
        path.unlink()
        context.log.info(f"{path.name} landed again with the content already loaded; removed from landing")
    elif landing.holds_identical(landing.quarantine, path, digest):
        landing.move_to_quarantine(path, (landing.quarantine / f"{path.name}.reason.txt").read_text().strip())
        context.log.warning(f"{path.name} landed again with the content quarantined before; quarantined again")
