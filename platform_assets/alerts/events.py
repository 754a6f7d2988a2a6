"""What the alerts look at: Dagster's own event log, read forward from a storage id (``event_log``).

Four kinds of event matter: asset check evaluations (a blocking check failed or
passed again), observations of landing outcomes (a file quarantined or stuck),
freshness state changes (written by Dagster's freshness daemon) and run failures.
Nothing here opens the lake.
"""

from dataclasses import dataclass, field

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.tags import RETRY_NUMBER_TAG, WILL_RETRY_TAG

from platform_assets.excerpts import excerpt
from platform_assets.resources import OUTCOME_KEY, QUARANTINED

WATCHED = (
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.ASSET_OBSERVATION,
    DagsterEventType.FRESHNESS_STATE_CHANGE,
    DagsterEventType.RUN_FAILURE,
)
COUNT_SUFFIX, PERCENT_SUFFIX = "_count", "_percent"
TESTED = {"check_rows_tested", "dataset_rows_tested"}


@dataclass(frozen=True)
class Finding:
    """One thing that went wrong, or became healthy again.

    ``incident`` groups findings that are one problem (a check on any of its files, stale
    data on any layer); ``member`` is the part of it (the file, the asset). A finding with
    no incident is a one-off (a quarantined file, a failed run) and has no "resolved".
    """

    kind: str  # check_failed | stale | quarantined | stuck | run_failed
    member: str
    healthy: bool = False
    incident: str | None = None
    detail: dict = field(default_factory=dict)


def finding(instance: dg.DagsterInstance, entry) -> Finding | None:
    """What an event means for the people who own the data, or None when it means nothing to them."""
    event = entry.dagster_event
    data = event.event_specific_data
    if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
        return _check(entry, data)
    if event.event_type == DagsterEventType.ASSET_OBSERVATION:
        return _landing_outcome(entry, data.asset_observation)
    if event.event_type == DagsterEventType.FRESHNESS_STATE_CHANGE:
        asset = data.key.to_user_string()
        return Finding("stale", asset, healthy=data.new_state.value != "FAIL", incident="stale data",
                       detail={"asset": asset, "at": entry.timestamp})
    if event.event_type == DagsterEventType.RUN_FAILURE:
        return _run_failure(instance, entry)
    return None


def _blocking(evaluation) -> bool:
    return bool(evaluation.blocking or evaluation.severity == dg.AssetCheckSeverity.ERROR)


def _check(entry, evaluation) -> Finding | None:
    """A blocking check's verdict on one partition (file); advisory checks never page."""
    if not _blocking(evaluation):
        return None
    asset = evaluation.asset_key.to_user_string()
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    count_key = max((k for k in metadata if k.endswith(COUNT_SUFFIX) and k not in TESTED
                     and isinstance(metadata[k], (int, float))), key=metadata.get, default=None)
    count = metadata.get(count_key)
    tested = metadata.get("check_rows_tested")
    percent = metadata.get(count_key[: -len(COUNT_SUFFIX)] + PERCENT_SUFFIX) if count_key else None
    if percent is None and count is not None and tested:
        percent = 100 * count / tested
    return Finding(
        "check_failed", evaluation.partition or "", healthy=evaluation.passed,
        incident=f"{asset}:{evaluation.check_name}",
        detail={"asset": asset, "check": evaluation.check_name, "file": evaluation.partition,
                "failing_rows": count, "percent": percent, "rows_tested": tested,
                "sample": excerpt(metadata["failing_rows"]) if isinstance(metadata.get("failing_rows"), str) else None,
                "outcome": metadata.get("outcome"), "run_id": entry.run_id, "at": entry.timestamp},
    )


def _landing_outcome(entry, observation) -> Finding | None:
    metadata = {k: v.value for k, v in observation.metadata.items()}
    outcome = metadata.get(OUTCOME_KEY)
    if outcome is None:
        return None
    return Finding("quarantined" if outcome == QUARANTINED else "stuck", metadata["file"], detail={
        "asset": observation.asset_key.to_user_string(), "file": metadata["file"], "reason": excerpt(metadata["reason"]),
        "run_id": entry.run_id or None, "at": entry.timestamp})


def _run_failure(instance: dg.DagsterInstance, entry) -> Finding | None:
    """A run that failed for good: not one that will be retried, nor one a data alert already explains."""
    run = instance.get_run_by_id(entry.run_id)
    if run is None or run.tags.get(WILL_RETRY_TAG) == "true":
        return None
    steps = []
    for log in instance.all_logs(entry.run_id, of_type={DagsterEventType.STEP_FAILURE,
                                                        DagsterEventType.ASSET_CHECK_EVALUATION,
                                                        DagsterEventType.ASSET_OBSERVATION}):
        event = log.dagster_event
        if event.event_type == DagsterEventType.STEP_FAILURE:
            steps.append((event.step_key, event.event_specific_data.error))
        elif _data_alert(event):
            return None
    step, error = steps[0] if steps else (None, None)
    message = (error.message if error else entry.dagster_event.message or "").strip()
    exception, separator, rest = message.partition(": ")
    if error and separator and exception.endswith(error.cls_name or "-"):  # "dagster...Failure: what happened"
        message = rest
    return Finding("run_failed", entry.run_id, detail={
        "job": run.job_name, "run_id": run.run_id, "step": step, "error": excerpt(message.splitlines()[0]) if message else "",
        "attempt": int(run.tags.get(RETRY_NUMBER_TAG, "0")) + 1, "at": entry.timestamp})


def _data_alert(event) -> bool:
    """The run failed because of its data: a blocking check failed or its file was quarantined."""
    data = event.event_specific_data
    if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
        return not data.passed and _blocking(data)
    return OUTCOME_KEY in data.asset_observation.metadata
