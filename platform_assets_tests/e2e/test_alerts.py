"""Who hears about it, against a running `dagster dev`: a real SMTP server and a real webhook receiver on loopback.

One story per server. The first: a file with negative sales pages once on each channel,
its link opens the check in the UI, the corrected file sends one "resolved", an unparsable
file one quarantine alert; with the mail server down ten bad files page the webhook once
(and are all named, in the page or in follow-ups), runs go on, and the mail arrives once the
server is back. The second: with a freshness
window of about a minute, Dagster's freshness daemon finds the layers stale (one alert)
and fresh again after the next file (one "resolved").
"""

import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from platform_assets.sample_data.land import land
from platform_assets_tests.e2e.browser import dismiss_welcome, shoot
from platform_assets_tests.e2e.dagster_server import dagster_dev
from platform_assets_tests.fixtures.receivers import Mailbox, Webhook

pytestmark = pytest.mark.e2e
CHECK = "sales_not_negative"
FIRST = date(2013, 1, 1)
GROUP_SECONDS = 15  # a burst ends after this long without news


def day_file(tmp_path: Path, day: date, sales: str | None = None) -> bytes:
    """The generated content of one day; ``sales`` replaces the first open store's sales (e.g. "-42")."""
    landed = land(tmp_path / "elsewhere", first=day, days=1)[-1]
    lines = landed.path.read_text().splitlines()
    if sales is not None:
        row = next(i for i, line in enumerate(lines[1:], 1) if line.split(",")[5] == "1")
        fields = lines[row].split(",")
        fields[3] = sales
        lines[row] = ",".join(fields)
    return ("\n".join(lines) + "\n").encode()


def drop(landing: Path, name: str, content: bytes) -> None:
    """Land a file the way a careful upstream does: written under a hidden name, then renamed."""
    landing.mkdir(parents=True, exist_ok=True)
    hidden = landing / f".{name}.tmp"
    hidden.write_bytes(content)
    os.replace(hidden, landing / name)


def wait_for(server, channel, count: int, what: str, timeout: float = 180) -> list[dict]:
    return server.wait_until(lambda: len(channel.messages()) >= count and channel.messages(), timeout, what)


def titles(channel) -> list[str]:
    return [m["title"] for m in channel.messages()]


def body(message: dict) -> str:
    return message.get("body") or message.get("message")


@pytest.fixture
def receivers():
    mailbox, webhook = Mailbox().start(), Webhook().start()
    yield mailbox, webhook
    mailbox.stop()
    webhook.stop()


def test_owners_hear_once_per_incident_with_a_link_and_a_mail_server_that_was_down_catches_up(
        tmp_path, receivers, browser):
    mailbox, webhook = receivers
    env = {"PLATFORM_ALERT_URLS": f"{mailbox.url} {webhook.url}", "PLATFORM_ALERT_GROUP_SECONDS": str(GROUP_SECONDS),
           "PLATFORM_LANDING_QUIET_SECONDS": "1"}
    with dagster_dev(tmp_path / "server", env=env) as server:
        landing = server.data_dir / "landing"
        name = f"sales_{FIRST}.csv"
        land(server.data_dir, first=FIRST, days=1)  # the store master (and a good day we replace)
        drop(landing, name, day_file(tmp_path, FIRST, sales="-42"))

        # a bad batch: one message on each channel, naming the check, the file and the count
        (mail,) = wait_for(server, mailbox, 1, "the email about the bad batch")
        (hook,) = wait_for(server, webhook, 1, "the webhook call about the bad batch")
        for message in (mail, hook):
            assert message["title"] == f"[platform_assets] Blocking check failed: raw/sales {CHECK} on {name}"
            assert f"- {name}: 1 failing row(s) of 1,114 (0.09%)" in body(message)
            assert "Rule: Sales are never negative." in body(message)
        link = re.search(r"^Check: (\S+)$", body(hook), re.M).group(1)
        assert link == f"{server.url}/assets/raw/sales?view=checks&checkDetail={CHECK}"
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(link)
        dismiss_welcome(page)
        page.get_by_text("Sales are never negative.").first.wait_for(timeout=60_000)  # the check's own page
        assert page.get_by_text(CHECK).count() > 0
        shoot(page, "alert_check_link.png")

        # the corrected file: one "resolved"
        drop(landing, name, day_file(tmp_path, FIRST))
        wait_for(server, webhook, 2, "the resolved message")
        wait_for(server, mailbox, 2, "the resolved email")
        assert titles(webhook)[1] == f"[platform_assets] Resolved: raw/sales {CHECK} passes on {name}"

        # a file that cannot be parsed: one quarantine alert with the reason
        broken = f"sales_{FIRST + timedelta(days=1)}.csv"
        drop(landing, broken, day_file(tmp_path, FIRST + timedelta(days=1), sales="lots"))
        wait_for(server, webhook, 3, "the quarantine alert")
        quarantined = webhook.messages()[2]
        assert quarantined["title"] == f"[platform_assets] File quarantined: {broken}"
        assert re.search(r"^Reason: .*Line: \d+", quarantined["message"], re.M), quarantined["message"]
        wait_for(server, mailbox, 3, "the quarantine email")

        # mail server down: ten bad files page the webhook once, and every one of them is named: in that page,
        # or (when a busy machine spreads their loads over more than one burst) in follow-ups that are no page
        mailbox.stop()
        bad = [FIRST + timedelta(days=i) for i in range(2, 12)]
        good = FIRST + timedelta(days=12)
        for day in bad:
            drop(landing, f"sales_{day}.csv", day_file(tmp_path, day, sales="-42"))
        drop(landing, f"sales_{good}.csv", day_file(tmp_path, good))

        def incident() -> list[dict]:
            return webhook.messages()[3:]

        def every_bad_file_named() -> bool:
            return all(any(f"- sales_{day}.csv: 1 failing row(s)" in body(m) for m in incident()) for day in bad)

        server.wait_until(every_bad_file_named, 300, "every bad file named across the incident's messages")
        page, *follow_ups = incident()  # one page, then (on a busy machine) follow-ups that are no page
        assert page["title"].startswith(f"[platform_assets] Blocking check failed: raw/sales {CHECK} on ")
        assert f"The blocking check {CHECK} on raw/sales failed on" in body(page)
        assert all(m["title"].startswith(f"[platform_assets] Still failing: raw/sales {CHECK}, now also on ")
                   and m["type"] == "warning" for m in follow_ups), titles(webhook)
        server.wait_until(lambda: [r["status"] for r in server.runs_for_partition(f"sales_{good}.csv")] == ["SUCCESS"],
                          180, "the good file's load")
        assert len(mailbox.received) == 3
        assert "FAILURE" not in server.sensor_tick_statuses("alerts")

        mailbox.start()  # back: what the webhook got arrives, once
        server.wait_until(lambda: titles(mailbox) == titles(webhook), 180, "the emails after the mail server came back")
        sent = titles(webhook)
        ticks = len(server.sensor_tick_statuses("alerts"))
        server.wait_until(lambda: len(server.sensor_tick_statuses("alerts")) >= ticks + 2, 120, "two more alert ticks")
        assert titles(mailbox) == titles(webhook) == sent  # nothing more, nothing twice


def test_stale_data_alerts_once_and_resolves_when_fresh_again(tmp_path, receivers):
    _, webhook = receivers
    env = {"PLATFORM_ALERT_URLS": webhook.url, "PLATFORM_ALERT_GROUP_SECONDS": "5",
           "PLATFORM_FRESHNESS_HOURS": "0.02",  # 72 s
           "FRESHNESS_DAEMON_INTERVAL_SECONDS": "5"}
    with dagster_dev(tmp_path / "server", env=env) as server:
        land(server.data_dir, first=FIRST, days=1)
        server.wait_until(lambda: server.latest_materialization("features", "sales_features"), 180, "features")

        stale = wait_for(server, webhook, 1, "the stale-data alert", timeout=240)[0]
        assert stale["title"].startswith("[platform_assets] Stale data: raw/sales")
        assert "for more than 1.2 min (its freshness policy)" in stale["message"]
        assert f"Asset: {server.url}/assets/raw/sales" in stale["message"]

        land(server.data_dir, first=FIRST + timedelta(days=1), days=1)
        *during, resolved = server.wait_until(
            lambda: "Resolved" in titles(webhook)[-1] and webhook.messages(), 120, "the resolved message")
        assert resolved["title"].startswith("[platform_assets] Resolved: fresh data in raw/sales")
        assert "features/sales_features" in resolved["message"]
        # one page; layers that went stale after it (a busy machine spreads them out) only in warnings
        assert during[0] == stale
        assert all(m["title"].startswith("[platform_assets] Still stale: now also ") and m["type"] == "warning"
                   for m in during[1:]), titles(webhook)
