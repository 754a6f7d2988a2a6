"""The lake's daily maintenance, as a job the schedule runs and anyone can start from the UI."""

import dagster as dg

from platform_assets.resources import Warehouse
from platform_assets.warehouse.maintenance import maintain


@dg.op(pool="duckdb", description="Compact small files, expire old snapshots, delete files nothing needs any more.")
def maintain_lake(context: dg.OpExecutionContext, warehouse: Warehouse) -> dg.Output[None]:
    with warehouse.get_connection() as conn:
        done = maintain(conn, warehouse.data_path, warehouse.version_retention_hours, warehouse.reader_grace_hours,
                        log=context.log)
    context.log.info(f"data files read by the current snapshot: {done['live_data_files_before']} -> "
                     f"{done['live_data_files_after']}; snapshots: {done['snapshots_before']} -> {done['snapshots_after']}")
    return dg.Output(None, metadata={**done, "retention_hours": warehouse.version_retention_hours,
                                     "reader_grace_hours": warehouse.reader_grace_hours})


@dg.job(description="The lake's maintenance: bounded file count and disk, old versions expired after the retention.")
def lake_maintenance():
    maintain_lake()


nightly_lake_maintenance = dg.ScheduleDefinition(
    name="nightly_lake_maintenance",
    job=lake_maintenance,
    cron_schedule="30 3 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night at 03:30: keep the lake's files and snapshots bounded.",
)
