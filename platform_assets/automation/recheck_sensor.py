"""A fixed store master un-stops the sales batches it failed, without anyone re-landing them.

A sales batch checked against a bad store master fails ``store_in_master`` and stops
the line; the fix is a new master, not new sales files (their content is unchanged,
so landing them again is a duplicate). After each new materialization of
``raw/stores`` this sensor re-runs the raw sales contract, checks only, on every
partition whose latest blocking check failed. Batches that pass are verified in the
ledger and their failed checks are resolved, so cleaned and features follow by
themselves; batches with their own problems fail again and stay stopped.
"""

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from platform_assets.assets.raw import raw_sales, raw_stores
from platform_assets.settings import Settings


def recheck_sensor(sales_contract: dg.AssetChecksDefinition) -> dg.SensorDefinition:
    """The sensor for the raw sales contract's checks (one multi-asset check, all its Dagster checks)."""
    check_keys = sorted(sales_contract.check_keys, key=lambda k: k.name)
    blocking = [spec.key for spec in sales_contract.check_specs if spec.blocking]

    @dg.sensor(
        name="recheck_sales_after_store_master",
        description="After a new store master loads, re-runs the checks of sales files that failed, so a fix "
                    "un-stops them.",
        minimum_interval_seconds=Settings.from_env().sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=dg.AssetSelection.checks(*check_keys),
    )
    def recheck(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        latest = context.instance.fetch_materializations(raw_stores.key, limit=1).records
        if not latest:
            return dg.SkipReason("no store master loaded yet")
        master = latest[0].storage_id
        if context.cursor is not None and int(context.cursor) >= master:
            return dg.SkipReason("no new store master since the last look")
        infos = context.instance.event_log_storage.get_asset_check_partition_info(blocking)
        failed = sorted({i.partition_key for i in infos if i.partition_key is not None
                         and i.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED})
        if failed:
            context.log.info(f"new store master: checking {len(failed)} failed sales file(s) again: {', '.join(failed)}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"recheck {name} @ store master {master}", partition_key=name,
                                        asset_selection=[], asset_check_keys=check_keys) for name in failed],
            cursor=str(master),
        )

    return recheck


def sales_contract_of(checks: list[dg.AssetChecksDefinition]) -> dg.AssetChecksDefinition:
    (contract,) = [c for c in checks if {k.asset_key for k in c.check_keys} == {raw_sales.key}]
    return contract
