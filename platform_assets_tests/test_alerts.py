"""The alert sensor against a real Dagster instance, a real SMTP server and a real webhook receiver on loopback.

Runs are the real raw loads with their Soda checks; the sensor is evaluated like the
daemon does (cursor carried, landing observations stored). The same against a running
`dagster dev`, with Dagster's freshness daemon, is e2e/test_alerts.py.
"""

import logging
from datetime import date, timedelta

import dagster as dg
import pytest

from platform_assets.alerts.events import Finding
from platform_assets.alerts.incidents import AlertState
from platform_assets.alerts.messages import Directory, compose
from platform_assets.alerts.sensor import alert_sensor
from platform_assets_tests.conftest import landing_sensor, raw_sales
from platform_assets.definitions import defs
from platform_assets.resources import STUCK, landing_outcome
from platform_assets.sample_data.land import land

UI = "http://dagster.example:3000"
HEADER = "Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday"
FIRST = date(2013, 1, 9)
CHECK = "sales_not_negative"


def write_sales(landing_dir, day: date, negative: int = 0, closed: int = 0) -> str:
    """A day of all 1,115 stores; the first ``negative`` sell a negative amount, the last ``closed`` are closed."""
    rows = []
    for store in range(1, 1116):
        is_closed = store > 1115 - closed
        sales = 0 if is_closed else -10 if store <= negative else 5000 + store
        rows.append(f"{store},{day.isoweekday()},{day},{sales},{0 if is_closed else 500 + store},"
                    f"{0 if is_closed else 1},0,0,0")
    name = f"sales_{day}.csv"
    (landing_dir / name).write_text("\n".join([HEADER, *rows]) + "\n")
    return name


@pytest.fixture
def channels(monkeypatch, mailbox, webhook):
    # the webhook's port comes from another variable, as a secret token would
    monkeypatch.setenv("ALERT_HOOK_PORT", str(webhook.server.port))
    monkeypatch.setenv("PLATFORM_ALERT_URLS",
                       f"{mailbox.url} {webhook.url.replace(str(webhook.server.port), '${ALERT_HOOK_PORT}')}")
    monkeypatch.setenv("PLATFORM_UI_URL", UI)
    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "0")
    return mailbox, webhook


def alert_ticks(instance):
    """Evaluate the alert sensor as the daemon does, carrying its cursor; the first tick starts watching."""
    state = {"cursor": None}
    repository = defs.get_repository_def()

    def _tick() -> None:
        context = dg.build_sensor_context(instance=instance, cursor=state["cursor"], repository_def=repository)
        state["cursor"] = alert_sensor(context).cursor

    _tick()
    _tick.cursor = lambda: state["cursor"]  # the sensor's stored state, as the daemon keeps it
    return _tick


@pytest.fixture
def alerts(instance):
    return alert_ticks(instance)


@pytest.fixture
def stores_loaded(data_dir, load):
    land(data_dir, days=1, first=date(2012, 12, 31))
    (data_dir / "landing" / "sales_2012-12-31.csv").unlink()
    assert load().success


def test_a_failed_blocking_check_alerts_once_per_incident_and_once_when_resolved(
        channels, alerts, stores_loaded, load, data_dir):
    mailbox, webhook = channels
    name = write_sales(data_dir / "landing", FIRST, negative=2)
    assert not load(name).success
    alerts()

    (mail,), (hook,) = mailbox.messages(), webhook.messages()
    assert mail["title"] == hook["title"] == f"[platform_assets] Blocking check failed: raw/sales {CHECK} on {name}"
    assert mail["body"].strip() == hook["message"].strip()
    body = hook["message"]
    assert f"- {name}: 2 failing row(s) of 1,115 (0.18%)" in body
    assert "Rule: Sales are never negative." in body
    assert "| 1 | 3 | 2013-01-09 | -10 |" in body  # a failing row
    assert f"Check: {UI}/assets/raw/sales?view=checks&checkDetail={CHECK}" in body
    assert "Owners: team:data-platform" in body
    assert hook["type"] == "failure"

    assert not load(name).success  # fails again on the next run: the same incident
    alerts()
    alerts()
    assert len(mailbox.messages()) == len(webhook.messages()) == 1

    write_sales(data_dir / "landing", FIRST)  # the corrected file, same name
    assert load(name).success
    alerts()
    alerts()
    assert [m["title"] for m in webhook.messages()][1:] == [
        f"[platform_assets] Resolved: raw/sales {CHECK} passes on {name}"]
    assert [m["title"] for m in mailbox.messages()] == [m["title"] for m in webhook.messages()]
    assert webhook.messages()[1]["type"] == "success"


def test_a_burst_of_bad_files_is_one_summary_per_channel(channels, alerts, stores_loaded, load, data_dir,
                                                          monkeypatch):
    mailbox, webhook = channels
    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "3600")  # the burst is not over while files keep failing
    names = [write_sales(data_dir / "landing", FIRST + timedelta(days=i), negative=i + 1) for i in range(10)]
    for name in names:
        assert not load(name).success
        alerts()
    assert mailbox.messages() == webhook.messages() == []

    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "0")  # quiet since: the burst is over
    alerts()
    (mail,), (hook,) = mailbox.messages(), webhook.messages()
    assert hook["title"] == f"[platform_assets] Blocking check failed: raw/sales {CHECK} on 10 files"
    for i, name in enumerate(names):
        assert f"- {name}: {i + 1} failing row(s) of 1,115" in hook["message"]
    assert mail["title"] == hook["title"]


def test_different_problems_in_one_burst_are_one_numbered_message(channels, alerts, stores_loaded, load, data_dir):
    _, webhook = channels
    bad = write_sales(data_dir / "landing", FIRST, negative=1)
    broken = data_dir / "landing" / f"sales_{FIRST + timedelta(days=1)}.csv"
    broken.write_text(HEADER + "\n1,4,2013-01-10,lots,500,1,0,0,0\n")
    assert not load(bad).success and not load(broken.name).success
    alerts()
    (hook,) = webhook.messages()
    assert hook["title"] == (f"[platform_assets] 2 problem(s): Blocking check failed: raw/sales {CHECK} on {bad}; "
                             f"File quarantined: {broken.name}")
    assert hook["message"].startswith(f"1. Blocking check failed: raw/sales {CHECK} on {bad}\n")
    assert f"\n\n2. File quarantined: {broken.name}\n" in hook["message"]


def test_advisory_checks_do_not_page(channels, alerts, stores_loaded, load, data_dir):
    mailbox, webhook = channels
    name = write_sales(data_dir / "landing", FIRST, closed=600)  # most stores closed on a Wednesday
    result = load(name)
    advisory = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert result.success and advisory == ["open_share_of_regular_days"]
    alerts()
    assert mailbox.messages() == webhook.messages() == []


def test_a_channel_that_is_down_gets_the_alert_when_it_is_back(channels, alerts, stores_loaded, load, data_dir,
                                                               capsys):
    mailbox, webhook = channels
    mailbox.stop()
    name = write_sales(data_dir / "landing", FIRST, negative=1)
    assert not load(name).success
    alerts()
    alerts()
    assert len(webhook.messages()) == 1 and mailbox.messages() == []
    assert "1 message(s) kept for the next tick" in capsys.readouterr().err

    mailbox.start()
    alerts()
    alerts()
    assert [m["title"] for m in mailbox.messages()] == [webhook.messages()[0]["title"]]
    assert len(webhook.messages()) == 1


def test_quarantined_files_alert_with_their_reason(channels, alerts, stores_loaded, load, data_dir, instance,
                                                   landing):
    mailbox, webhook = channels
    broken = data_dir / "landing" / f"sales_{FIRST}.csv"
    broken.write_text(HEADER + "\n1,3,2013-01-09,5000,500,1,0,0,0\n2,3,2013-01-09,lots,500,1,0,0,0\n")
    assert not load(broken.name).success
    alerts()
    (hook,) = webhook.messages()
    assert hook["title"] == f"[platform_assets] File quarantined: {broken.name}"
    assert "Reason: " in hook["message"] and "Line: 3" in hook["message"]
    assert f"Run: {UI}/runs/" in hook["message"]  # the failed load is the quarantine, not a second alert

    (data_dir / "landing" / "sales_yesterday.csv").write_text(HEADER + "\n")  # a name the sensor refuses
    result = landing_sensor(dg.build_sensor_context(instance=instance, resources={"landing": landing}))
    for event in result.asset_events:  # what the daemon does with a sensor's asset events
        instance.report_runless_asset_event(event)
    alerts()
    assert webhook.messages()[1]["title"] == "[platform_assets] File quarantined: sales_yesterday.csv"
    assert len(mailbox.messages()) == 2


def test_a_stuck_file_alerts(channels, alerts, instance):
    _, webhook = channels
    # what the landing sensor records (test_sensor.py shows it does), as the daemon stores it
    instance.report_runless_asset_event(landing_outcome(raw_sales.key, STUCK, "sales_2013-01-09.csv",
                                                        "waited 61.0 min: its load failed 3 time(s)"))
    alerts()
    (hook,) = webhook.messages()
    assert hook["title"] == "[platform_assets] File stuck in landing: sales_2013-01-09.csv"
    assert "still in landing/: waited 61.0 min: its load failed 3 time(s)" in hook["message"]
    assert f"{UI}/assets/raw/sales?view=events" in hook["message"]


@pytest.fixture
def retrying_instance():
    """An instance that retries a failed run once (unlike dagster.yaml, also one that failed in an op)."""
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        yield instance


def test_a_run_alerts_when_it_failed_for_good_not_while_it_will_be_retried(
        channels, retrying_instance, resources, data_dir, monkeypatch):
    from platform_assets_tests.conftest import load_raw

    _, webhook = channels
    alerts = alert_ticks(retrying_instance)
    land(data_dir, days=1, first=date(2012, 12, 31))
    assert load_raw(retrying_instance, resources).success
    missing = "sales_2013-01-20.csv"  # requested, but no such file anywhere
    first = load_raw(retrying_instance, resources, missing)
    assert not first.success and first.dagster_run.run_id
    assert retrying_instance.get_run_by_id(first.run_id).tags["dagster/will_retry"] == "true"
    alerts()
    assert webhook.messages() == []  # its retry may still succeed

    # the last attempt: what the retry daemon's run carries, with no retry left after it
    last = load_raw(retrying_instance, resources, missing,
                    tags={"dagster/retry_number": "1", "dagster/max_retries": "0"})
    assert retrying_instance.get_run_by_id(last.run_id).tags["dagster/will_retry"] == "false"
    alerts()
    (hook,) = webhook.messages()
    assert hook["title"] == "[platform_assets] Run failed: __ephemeral_asset_job__ in step raw__sales"
    assert "(attempt 2, no retry left)" in hook["message"]
    assert f": {missing} is neither in" in hook["message"] and f"{UI}/runs/{last.run_id}" in hook["message"]


def test_without_channels_alerts_are_written_to_the_sensor_log(alerts, stores_loaded, load, data_dir, monkeypatch,
                                                                capsys):
    monkeypatch.delenv("PLATFORM_ALERT_URLS", raising=False)
    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "0")
    name = write_sales(data_dir / "landing", FIRST, negative=3)
    assert not load(name).success
    alerts()
    log = capsys.readouterr().err
    assert f"ALERT [platform_assets] Blocking check failed: raw/sales {CHECK} on {name}" in log
    assert "PLATFORM_ALERT_URLS is empty" in log

    monkeypatch.setenv("PLATFORM_ALERT_URLS", "carrier-pigeon://coop")  # a typo in the setting
    broken = data_dir / "landing" / f"sales_{FIRST + timedelta(days=1)}.csv"
    broken.write_text(HEADER + "\n1,4,2013-01-10,lots,500,1,0,0,0\n")  # something new to send: a quarantine
    assert not load(broken.name).success
    alerts()
    assert "PLATFORM_ALERT_URLS: carrier-pigeon://... is not a URL apprise understands" in capsys.readouterr().err


def test_files_failing_after_the_incident_paged_are_named_in_one_follow_up_not_a_second_page(
        channels, alerts, stores_loaded, load, data_dir, monkeypatch):
    """However a burst's loads are spread in time (a busy machine), every bad file is named; the incident pages once."""
    mailbox, webhook = channels
    names = [write_sales(data_dir / "landing", FIRST + timedelta(days=i), negative=1) for i in range(4)]
    assert not load(names[0]).success
    alerts()  # the burst looked over after the first file: the incident pages
    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "3600")
    for name in names[1:]:  # the rest of the burst's loads came later
        assert not load(name).success
        alerts()
    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "0")
    alerts()
    alerts()
    page, follow_up = webhook.messages()
    assert page["title"] == f"[platform_assets] Blocking check failed: raw/sales {CHECK} on {names[0]}"
    assert (page["type"], follow_up["type"]) == ("failure", "warning")
    assert follow_up["title"] == f"[platform_assets] Still failing: raw/sales {CHECK}, now also on 3 more files"
    assert "its incident is still open (4 file(s) failing). It was alerted once" in follow_up["message"]
    for name in names[1:]:
        assert f"- {name}: 1 failing row(s) of 1,115" in follow_up["message"]
    assert [m["title"] for m in mailbox.messages()] == [page["title"], follow_up["title"]]

    for i, name in enumerate(names):  # all corrected: one "resolved" for the incident
        write_sales(data_dir / "landing", FIRST + timedelta(days=i))
        assert load(name).success
        alerts()
    assert [m["title"] for m in webhook.messages()][2:] == [
        f"[platform_assets] Resolved: raw/sales {CHECK} passes on all 4 files"]


def test_a_file_that_fails_and_heals_before_its_follow_up_goes_out_is_not_named(
        channels, alerts, stores_loaded, load, data_dir, monkeypatch):
    _, webhook = channels
    first, second, third = (write_sales(data_dir / "landing", FIRST + timedelta(days=i), negative=1) for i in range(3))
    assert not load(first).success
    alerts()
    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "3600")
    assert not load(second).success
    alerts()
    write_sales(data_dir / "landing", FIRST + timedelta(days=1))  # corrected before the follow-up went out
    assert load(second).success
    alerts()
    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "0")
    alerts()
    assert len(webhook.messages()) == 1  # nothing to add: the incident still fails on the first file only
    assert not load(third).success
    alerts()
    assert webhook.messages()[1]["title"].endswith(f"now also on {third}")


def test_a_layer_going_stale_after_the_stale_data_page_is_a_follow_up_then_one_resolved():
    """Downstream layers go stale a tick or more after raw on a busy machine; that is the same incident."""
    directory = Directory(UI, {"raw/sales": ["data-platform"]}, {}, freshness_hours=0.5)
    state, log = AlertState(), logging.getLogger("test")

    def stale(asset, at, healthy=False):
        state.take(Finding("stale", asset, healthy=healthy, incident="stale data",
                           detail={"asset": asset, "at": at}), at, log)
        notices, incidents = state.close_batch()
        return compose(notices, incidents, directory) if notices else None

    page = stale("raw/sales", 1000.0)
    assert (page.title, page.severity) == ("[platform_assets] Stale data: raw/sales", "warning")
    follow_up = stale("features/sales_features", 1010.0)
    assert (follow_up.title, follow_up.severity) == (
        "[platform_assets] Still stale: now also features/sales_features", "warning")
    assert "the stale-data incident is still open (raw/sales, features/sales_features)" in follow_up.body
    assert f"Asset: {UI}/assets/features/sales_features" in follow_up.body
    assert stale("raw/sales", 1100.0, healthy=True) is None  # one layer fresh again: still open
    resolved = stale("features/sales_features", 1130.0, healthy=True)
    assert (resolved.title, resolved.severity) == (
        "[platform_assets] Resolved: fresh data in raw/sales, features/sales_features", "success")
    assert "stale for 2 min" in resolved.body
