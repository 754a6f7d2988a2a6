"""The alert sensor: reads Dagster's event log forward, keeps incidents in its cursor, sends through apprise.

Every message is written to the sensor's log too, so alerts are visible in the UI
even with no channel configured. Delivery failures are logged and retried on a
later tick; nothing here raises into Dagster for a channel's sake.
"""

import json
import time

import dagster as dg

from platform_assets.alerts import channels, events
from platform_assets.alerts.incidents import AlertState
from platform_assets.alerts.messages import PREFIX, Directory, Message, compose
from platform_assets.event_log import read_after
from platform_assets.settings import ALERT_URLS_ENV, Settings


def directory_of(repository: dg.RepositoryDefinition, settings: Settings) -> Directory:
    graph = repository.asset_graph
    return Directory(
        ui_url=settings.ui_url,
        owners={key.to_user_string(): list(graph.get(key).owners) for key in graph.get_all_asset_keys()},
        rules={f"{key.asset_key.to_user_string()}:{key.name}": graph.get_check_spec(key).description or key.name
               for key in graph.asset_check_keys},
        freshness_hours=settings.freshness_hours,
    )


@dg.sensor(
    name="alerts",
    description="Tells the data's owners (PLATFORM_ALERT_URLS) about failed blocking checks, quarantined or stuck "
                "files, failed runs and stale data: once per incident, one message per burst, and when resolved.",
    minimum_interval_seconds=Settings.from_env().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def alert_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason | dg.SensorResult:
    settings = Settings.from_env()
    state = AlertState.from_cursor(context.cursor)
    now = time.time()
    if state.after is None:  # first tick: alert on what happens from now on, not on the instance's history
        state.after = context.instance.event_log_storage.get_maximum_record_id() or 0
        context.log.info(f"watching Dagster's event log from storage id {state.after}")
    entries, state.after = read_after(context.instance, state.after, events.WATCHED)
    for entry in entries:
        try:
            found = events.finding(context.instance, entry)
        except Exception as error:  # one odd event never stops the alerts
            context.log.warning(f"event {entry.dagster_event.event_type_value} of run {entry.run_id or '-'} "
                                f"not understood ({type(error).__name__}: {error})")
            continue
        if found is not None:
            state.take(found, now, context.log)
    flush = state.burst_over(now, settings.alert_group_seconds)
    if flush or any(state.outbox.values()):
        configured = _channels(settings, context.log)
        notices, incidents = state.close_batch() if flush else ([], {})
        if notices:  # (a batch of files that joined an incident and are healthy again by now says nothing)
            message = _compose(notices, incidents, directory_of(context.repository_def, settings), context.log)
            context.log.warning(f"ALERT {message.title}\n{message.body}")
            if not configured:
                context.log.info(f"no alert channel configured ({ALERT_URLS_ENV} is empty): the message is only logged")
            for channel in configured:
                state.outbox.setdefault(channel.id, []).append(message.as_dict())
        channels.deliver(state.outbox, configured, context.log)
    return dg.SensorResult(cursor=state.to_cursor())


def _compose(notices, incidents, directory, log) -> Message:
    """The batch's message; should writing it fail, a plain one still goes out (the alert is never lost)."""
    try:
        return compose(notices, incidents, directory)
    except Exception as error:
        log.error(f"could not write the alert message ({type(error).__name__}: {error}); sending the raw notices")
        return Message(f"{PREFIX} {len(notices)} alert(s)", json.dumps(notices, indent=1, default=str), "failure")


def _channels(settings: Settings, log) -> list[channels.Channel]:
    configured = channels.channels(settings.alert_urls)
    for bad in (c for c in configured if not c.valid):
        log.error(f"{ALERT_URLS_ENV}: {bad.name} is not a URL apprise understands; nothing is sent there")
    return [c for c in configured if c.valid]
