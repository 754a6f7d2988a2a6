"""Watch the landing folder and start a load for every new or changed file.

Each sales file becomes a dynamic partition of ``raw/sales`` named after the
file; a changed store master re-materializes ``raw/stores``. The cursor keeps
the content hash last requested per file name, and run keys carry the hash, so
the same content is never requested twice.
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
    runs, new_partitions = [], []
    for path in landing.landed_files():
        schema = rossmann.file_schema_for(path.name)
        if schema is None:
            context.log.warning(f"ignoring {path.name}: not a sales_*.csv or {rossmann.STORES_FILE} file")
            continue
        digest = content_hash(path)
        if requested.get(path.name) == digest:
            continue
        requested[path.name] = digest
        run_key = f"{path.name}@{digest[:16]}"
        if schema is rossmann.SALES:
            new_partitions.append(path.name)
            runs.append(dg.RunRequest(run_key=run_key, partition_key=path.name, asset_selection=[raw_sales.key]))
        else:
            runs.append(dg.RunRequest(run_key=run_key, asset_selection=[raw_stores.key]))
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[sales_files.build_add_request(new_partitions)] if new_partitions else [],
        cursor=json.dumps(requested, sort_keys=True),
    )
