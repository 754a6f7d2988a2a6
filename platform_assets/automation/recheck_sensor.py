"""Sales batches are checked again when their verdict may have changed or never came.

Two cases, one sensor (both re-run the raw sales contract, checks only, on a partition):

- **a fixed store master**: a sales batch checked against a bad store master fails
  ``store_in_master`` and stops the line; the fix is a new master, not new sales files
  (their content is unchanged, so landing them again is a duplicate). After each new
  materialization of ``raw/stores``, every partition whose latest blocking check failed
  is checked again. Batches that pass are verified in the ledger and their failed checks
  are resolved, so cleaned and features follow by themselves; batches with their own
  problems fail again and stay stopped.
- **checks that never finished**: a batch was loaded but the run ended before its checks
  gave a verdict (the server stopped mid-run: found by the restart test). Its file is
  archived, so nothing else would ever verify it, and cleaned reads verified files only.
  It is checked again once per run that left it so.
"""

import json

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as Status

from platform_assets.assets.raw import raw_sales, raw_stores
from platform_assets.event_log import read_after
from platform_assets.settings import Settings

# a run that ended, however it ended: one cut short leaves its planned checks without a verdict
RUN_ENDS = (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED)


def recheck_sensor(sales_contract: dg.AssetChecksDefinition) -> dg.SensorDefinition:
    """The sensor for the raw sales contract's checks (one multi-asset check, all its Dagster checks)."""
    check_keys = sorted(sales_contract.check_keys, key=lambda k: k.name)
    blocking = [spec.key for spec in sales_contract.check_specs if spec.blocking]

    @dg.sensor(
        name="recheck_sales_after_store_master",
        description="Re-runs the checks of sales files after a new store master loads (so a fix un-stops "
                    "them) and of files whose run ended before their checks finished.",
        minimum_interval_seconds=Settings.from_env().sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=dg.AssetSelection.checks(*check_keys),
    )
    def recheck(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        seen = json.loads(context.cursor) if context.cursor else {}
        if isinstance(seen, int):  # an earlier version's cursor: the store master only
            seen = {"master": seen}
        requests = {}
        latest = context.instance.fetch_materializations(raw_stores.key, limit=1).records
        master = latest[0].storage_id if latest else None
        if master is not None and seen.get("master", -1) < master:
            infos = context.instance.event_log_storage.get_asset_check_partition_info(blocking)
            failed = sorted({i.partition_key for i in infos
                             if i.partition_key is not None and i.latest_execution_status == Status.FAILED})
            if failed:
                context.log.info(f"new store master: checking {len(failed)} failed sales file(s) again: "
                                 f"{', '.join(failed)}")
            requests |= {name: f"recheck {name} @ store master {master}" for name in failed}
            seen["master"] = master
        ended, seen["runs_after"] = read_after(context.instance, seen.get("runs_after", 0), RUN_ENDS)
        for name, run_id in _checks_cut_short(context.instance, blocking, {e.run_id for e in ended}).items():
            context.log.warning(f"{name} was loaded by run {run_id}, which ended before its checks finished: "
                                "checking it again")
            requests.setdefault(name, f"recheck {name} after run {run_id}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=key, partition_key=name, asset_selection=[],
                                        asset_check_keys=check_keys) for name, key in sorted(requests.items())],
            cursor=json.dumps(seen),
        )

    return recheck


def _checks_cut_short(instance: dg.DagsterInstance, blocking: list[dg.AssetCheckKey],
                      ended_runs: set[str]) -> dict[str, str]:
    """Loaded partitions whose checks were planned by one of ``ended_runs`` and never evaluated.

    Only the partitions those runs planned are looked up, so a tick costs the same however
    long the history is. A partition never materialized (its load was quarantined) has
    nothing to check and is left out.
    """
    planned = set()
    for run_id in ended_runs:
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED):
            subset = entry.dagster_event.event_specific_data.partitions_subset
            planned.update(subset.get_partition_keys() if subset is not None else ())
    if not planned:
        return {}
    infos = instance.event_log_storage.get_asset_check_partition_info(blocking, partition_keys=sorted(planned))
    return {i.partition_key: i.latest_planned_run_id for i in infos
            if i.latest_execution_status == Status.PLANNED and i.latest_planned_run_id in ended_runs
            and i.latest_materialization_storage_id is not None}


def sales_contract_of(checks: list[dg.AssetChecksDefinition]) -> dg.AssetChecksDefinition:
    (contract,) = [c for c in checks if {k.asset_key for k in c.check_keys} == {raw_sales.key}]
    return contract
