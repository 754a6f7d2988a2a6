"""Untrusted input is quoted only in bounded excerpts: a 10 MB line costs a few KB wherever it shows up.

Real raw loads (quarantine reason file, ledger, run events), the real alert sensor
(message, stored state) and a real webhook receiver that is down, then back.
"""

import re

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from platform_assets_tests.conftest import lake, raw_sales
from platform_assets.resources import QUARANTINED, landing_outcome
from platform_assets_tests.fixtures.receivers import Webhook
from platform_assets_tests.test_alerts import HEADER, alert_ticks

FEW_KB = 4096
MB = 1024 * 1024
TOKEN = "secret-token-0123456789"


def sizes(instance, data_dir, webhook, tick, result, name) -> dict:
    """What the quarantine of ``name`` left behind, in bytes, wherever it is quoted."""
    tick()
    (message,) = [m for m in webhook.messages() if name in m["title"]]
    with lake(data_dir) as conn:
        (ledger,) = conn.execute("SELECT length(reason) FROM ops.landed_files WHERE file_name = ?", [name]).fetchall()[0]
    return {
        "reason_file": (data_dir / "quarantine" / f"{name}.reason.txt").stat().st_size,
        "ledger": ledger,
        "run_events": sum(len(serialize_value(e)) for e in instance.all_logs(result.run_id)),
        "alert": len(message["title"]) + len(message["message"]),
    }


HOSTILE = {
    "a 10 MB header": lambda: f"Store,DayOfWeek,{TOKEN}" + "x" * 10 * MB,
    "2,000 made-up columns": lambda: HEADER + "".join(f",{TOKEN}{i}" for i in range(2_000)) + "\n1,2\n",
    "a 10 MB value in a row": lambda: f"{HEADER}\n1,3,2013-01-10,{TOKEN}{'9' * 10 * MB},500,1,0,0,0\n",
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_huge_line_costs_a_few_kb_more_than_a_small_one_wherever_it_is_quoted(
        case, data_dir, instance, load, monkeypatch, webhook):
    monkeypatch.setenv("PLATFORM_ALERT_URLS", webhook.url)
    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "0")
    tick = alert_ticks(instance)
    landing = data_dir / "landing"
    landing.mkdir(parents=True)

    small = "sales_2013-01-09.csv"
    (landing / small).write_text("Store,DayOfWeek,Bogus\n1,2,3\n" if "header" in case or "columns" in case
                                 else f"{HEADER}\n1,3,2013-01-09,lots,500,1,0,0,0\n")
    normal = sizes(instance, data_dir, webhook, tick, load(small), small)
    cursor = len(tick.cursor())

    huge = "sales_2013-01-10.csv"
    (landing / huge).write_text(HOSTILE[case]())
    hostile = sizes(instance, data_dir, webhook, tick, load(huge), huge)
    print(f"\n{case}: normal {normal}, hostile {hostile}")
    assert all(hostile[k] <= normal[k] + FEW_KB for k in normal), (normal, hostile)
    assert len(tick.cursor()) <= cursor + FEW_KB

    reason = (data_dir / "quarantine" / f"{huge}.reason.txt").read_text()
    assert len(reason) < 1000 and reason.count(TOKEN) <= 20
    if case == "a 10 MB header":
        assert f"line 1 is longer than 65,536 bytes, so it is not the header of the sales schema " \
               f"(expected {HEADER})" in reason
    elif case == "2,000 made-up columns":  # named by expected and found columns, never the raw line
        assert f"unexpected columns: '{TOKEN}0', '{TOKEN}1'," in reason and "and 1,995 more" in reason
        assert f"(expected {HEADER}; found 2,009 column(s))" in reason
    else:
        assert "Original Line: 1,3,2013-01-10,secret-token" in reason
        assert re.search(r"\.\.\. \(10,\d{3},\d{3} more bytes\)", reason)  # what the cut left out, counted
    (message,) = [m for m in webhook.messages() if huge in m["title"]]
    assert reason.strip().splitlines()[0][:200] in message["message"]


def test_a_channel_down_for_100_ticks_keeps_a_bounded_backlog_and_says_what_it_dropped(instance, monkeypatch):
    receiver = Webhook()  # not started: the channel is down
    monkeypatch.setenv("PLATFORM_ALERT_URLS", receiver.url)
    monkeypatch.setenv("PLATFORM_ALERT_GROUP_SECONDS", "0")
    tick = alert_ticks(instance)
    largest = 0
    for i in range(100):
        instance.report_runless_asset_event(landing_outcome(
            raw_sales.key, QUARANTINED, f"sales_2013-02-{i % 28 + 1:02d}.csv", f"{TOKEN}{'x' * MB} (#{i})"))
        tick()
        largest = max(largest, len(tick.cursor()))
    print(f"\nlargest cursor over 100 ticks with the channel down: {largest:,} bytes")
    assert largest < 160 * 1024  # 128 KB of undelivered messages at most, and the rest of the state

    receiver.start()
    try:
        tick()
        received = receiver.messages()
    finally:
        receiver.stop()
    dropped = received[0]
    assert dropped["title"].startswith("[platform_assets] ") and "alert(s) were dropped" in dropped["title"]
    count = int(dropped["title"].split("] ")[1].split()[0])
    assert count + len(received) - 1 == 100  # every alert was either delivered or counted as dropped
    assert [m["title"].rsplit(" ", 1)[-1] for m in received[1:]][-1] == "sales_2013-02-16.csv"  # the newest, #99
