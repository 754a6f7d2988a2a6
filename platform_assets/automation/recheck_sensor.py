"""Landed batches are checked again when their verdict may have changed or never came.

Two cases, one sensor over every landed dataset (both re-run its contract, checks only):

- **what a dataset's checks read has changed**: a dataset that ``loads_after`` another
  (sales after the store master: ``store_in_master`` reads ``raw.stores``) has files that
  failed against a bad version of it; the fix is a new version of that one, not new files
  of this one (their content is unchanged, so landing them again is a duplicate). After
  each new materialization of it, every partition whose latest blocking check failed is
  checked again (the table, for a dataset whose file replaces it). Batches that pass are
  verified in the ledger and their failed checks are resolved, so the layers downstream
  follow by themselves; batches with their own problems fail again and stay out.
- **checks that never finished** (datasets with one partition per file): a batch was
  loaded but the run ended before its checks gave a verdict (the server stopped mid-run:
  found by the restart test). Its file is archived, so nothing else would ever verify it,
  and the layers read verified files only. It is checked again once per run that left it so.

A recheck that passes is followed through the layers built on the dataset when they last ran
before it (a new store master is carried through cleaned and features in its own run, which may
finish while the recheck waits for the writers' pool: those layers then held the batch back, and
no new data would ever tell them to look again; found by CI). Once no run that builds them is
queued or running, and they have not been built since, the sensor requests them itself.
"""

import json

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus as Status
from dagster._core.storage.tags import SENSOR_NAME_TAG

from platform_assets.automation.landing_sensor import being_built
from platform_assets.datasets import Datasets
from platform_assets.event_log import read_after
from platform_assets.settings import Settings

# a run that ended, however it ended: one cut short leaves its planned checks without a verdict
RUN_ENDS = (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED)


SENSOR_NAME = "recheck_landed_files"
FOLLOW_UP_KEY = "follow recheck of"  # the run key of a follow-up through the layers starts so


def recheck_sensor(datasets: Datasets, checks: list[dg.AssetChecksDefinition],
                   layers: dict[dg.AssetKey, list[dg.AssetKey]], follow_job) -> dg.SensorDefinition:
    """The sensor for the contracts of the landed datasets; ``layers`` are those built on each dataset (first
    the nearest), which ``follow_job`` (an asset job that selects them) builds after a recheck passed."""
    per_file = [dataset for dataset in datasets.all if dataset.per_file]
    by_name = {dataset.name: dataset for dataset in datasets.all}
    contracts = {d.name: next(c for c in checks if {k.asset_key for k in c.check_keys} == {d.asset_key})
                 for d in datasets.all}
    check_keys = {name: sorted(c.check_keys, key=lambda k: k.name) for name, c in contracts.items()}
    blocking = {name: [spec.key for spec in c.check_specs if spec.blocking] for name, c in contracts.items()}
    # a job per dataset (its asset and checks; the requests run the checks only): Dagster validates a
    # request's partition against the partitions of its job's assets, which must be one definition
    jobs = {d.name: dg.define_asset_job(
                f"recheck_{d.name}", selection=dg.AssetSelection.assets(d.asset_key) | dg.AssetSelection.checks(
                    *check_keys[d.name]),
                description=f"{d.table} and its checks; the recheck_landed_files sensor runs its checks only.")
            for d in datasets.all}

    @dg.sensor(
        name=SENSOR_NAME,
        description="Re-runs the checks of landed files after what their checks read changed (so a fix un-stops "
                    "them) and of files whose run ended before their checks finished.",
        minimum_interval_seconds=Settings.from_env().sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=[*jobs.values(), follow_job],
    )
    def recheck(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        seen = json.loads(context.cursor) if context.cursor else {}
        requests = {}  # (dataset name, partition or "" for the table) -> run key
        changed = seen.setdefault("changed", {})
        # each dependency's newest materialization, read once: what is checked against is what is marked seen
        latest = {}
        for key in {key for dataset in datasets.all for key in dataset.loads_after}:
            records = context.instance.fetch_materializations(dg.AssetKey.from_user_string(key), limit=1).records
            if records:
                latest[key] = records[0].storage_id
        for dataset in datasets.all:
            for key in dataset.loads_after:
                if key not in latest or changed.get(key, -1) >= latest[key]:
                    continue
                failed = _failed(context.instance, dataset, blocking[dataset.name])
                if failed:
                    context.log.info(f"new {key}: checking the failed {dataset.name} "
                                     f"{', '.join(failed) if dataset.per_file else 'table'} again")
                requests |= {(dataset.name, name): f"recheck {name or dataset.table} @ {key} {latest[key]}"
                             for name in failed}
        changed.update(latest)  # every dependency seen now, once all datasets looked at it
        ended, seen["runs_after"] = read_after(context.instance, seen.get("runs_after", 0), RUN_ENDS)
        for dataset in per_file:
            for name, run_id in _checks_cut_short(context.instance, blocking[dataset.name],
                                                  {e.run_id for e in ended}).items():
                context.log.warning(f"{name} was loaded by run {run_id}, which ended before its checks finished: "
                                    "checking it again")
                requests.setdefault((dataset.name, name), f"recheck {name} after run {run_id}")
        follow = seen.setdefault("follow", {})  # dataset -> when its latest passed recheck ended
        for event in ended:
            if event.dagster_event.event_type == DagsterEventType.RUN_SUCCESS:
                for name in _rechecked(context.instance, event.run_id, datasets):
                    follow[name] = max(follow.get(name, 0), event.timestamp)
        follow_ups = []
        for name, passed_at in sorted(follow.items()):
            built = layers.get(by_name[name].asset_key, []) if name in by_name else []
            if not built or not _held_back(context.instance, by_name[name].asset_key, built[0], passed_at):
                del follow[name]
            elif not being_built(context.instance, set(built)):  # that run reads the verdict itself
                context.log.info(f"{name} passed its recheck after {built[0].to_user_string()} was last built: "
                                 "building the layers on it again")
                follow_ups.append(dg.RunRequest(run_key=f"{FOLLOW_UP_KEY} {name} at {passed_at}",
                                                job_name=follow_job.name, asset_selection=built))
                del follow[name]
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=key, job_name=jobs[dataset].name, partition_key=name or None,
                                        asset_selection=[], asset_check_keys=check_keys[dataset])
                          for (dataset, name), key in sorted(requests.items())] + follow_ups,
            cursor=json.dumps(seen),
        )

    return recheck


def _failed(instance: dg.DagsterInstance, dataset, blocking: list[dg.AssetCheckKey]) -> list[str]:
    """The dataset's batches whose latest blocking check failed: its partitions, or "" for its table."""
    if dataset.per_file:
        infos = instance.event_log_storage.get_asset_check_partition_info(blocking)
        return sorted({i.partition_key for i in infos
                       if i.partition_key is not None and i.latest_execution_status == Status.FAILED})
    summaries = instance.event_log_storage.get_asset_check_summary_records(blocking).values()
    return [""] if any(s.last_check_execution_record is not None
                       and s.last_check_execution_record.status == Status.FAILED for s in summaries) else []


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


def _rechecked(instance: dg.DagsterInstance, run_id: str, datasets: Datasets) -> set[str]:
    """The datasets whose checks a run of this sensor checked again (none for any other run)."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.tags.get(SENSOR_NAME_TAG) != SENSOR_NAME:
        return set()
    checked = {entry.dagster_event.event_specific_data.asset_key
               for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)}
    return {d.name for d in datasets.all if d.asset_key in checked}


def _held_back(instance: dg.DagsterInstance, dataset: dg.AssetKey, layer: dg.AssetKey, passed_at: float) -> bool:
    """The layer was last built after the dataset's latest load and before its recheck passed: it left the
    batch out, and automation sees nothing newer upstream. (Built after the pass, it took the batch; built
    before the latest load, or never, automation builds it by itself.)"""
    built = instance.get_latest_materialization_event(layer)
    loaded = instance.get_latest_materialization_event(dataset)
    return built is not None and loaded is not None and loaded.timestamp <= built.timestamp < passed_at
