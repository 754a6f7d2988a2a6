"""A hostile upstream and a busy operator against a running `dagster dev`: the platform never stops for good.

One story, one server, each step a case of "Trust under real operations": odd entries
beside a good file, a file written slowly in place, a load that fails after its commit,
a file that vanished before its run read it, a bad store master and its fix. After
every step the good data flows to features by itself, and nothing is loaded twice.
"""

import os
import subprocess
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from platform_assets.automation.recheck_sensor import FOLLOW_UP_KEY, SENSOR_NAME as RECHECK_SENSOR
from platform_assets.sample_data.land import land
from platform_assets_tests.e2e.dagster_server import dagster_dev
from platform_assets_tests.fixtures.odd_entries import odd_entries

pytestmark = pytest.mark.e2e

ENV = {"PLATFORM_LANDING_QUIET_SECONDS": "3", "PLATFORM_LANDING_RETRY_SECONDS": "3"}
FIRST_DAY_ROWS, DAY_ROWS = 1114, 1115  # one store has no row on 2013-01-01


def features_rows(server) -> int | None:
    latest = server.latest_materialization("features", "sales_features")
    return latest and latest.get("dagster/row_count")


def wait_for_features(server, days: int, what: str) -> None:
    rows = FIRST_DAY_ROWS + (days - 1) * DAY_ROWS
    server.wait_until(lambda: features_rows(server) == rows, 240, f"features for {days} days ({what})")


def set_writer_slots(server, slots: int) -> None:
    """How many steps may write the lake at once, as `dagster instance concurrency set duckdb <n>` sets it."""
    with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
        instance.event_log_storage.set_concurrency_slots("duckdb", slots)


def finished_runs(server, partition: str, status: str) -> list[dict]:
    return [r for r in server.runs_for_partition(partition) if r["status"] == status]


def day_file(tmp_path: Path, day: str) -> bytes:
    """The generated content of one day, landed somewhere else."""
    (landed,) = land(tmp_path / "elsewhere", first=date.fromisoformat(day), days=1)[1:]
    return landed.path.read_bytes()


def chattr(path: Path, flag: str) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True)


def test_odd_files_slow_writers_failed_loads_and_a_bad_master_never_stop_the_platform(tmp_path):
    with dagster_dev(tmp_path, env=ENV) as server:
        data = server.data_dir
        landing, quarantine, archive = data / "landing", data / "quarantine", data / "archive"

        land(data, days=1)  # store master + 2013-01-01
        wait_for_features(server, 1, "a normal start")

        # Odd entries (a pipe, a folder, a link, a 250-byte name, a name that is not UTF-8, impossible
        # dates) beside a good file: each is quarantined with its reason, the good file flows.
        expected = odd_entries(landing)
        land(data, first=date(2013, 1, 2), days=1)
        wait_for_features(server, 2, "the good file beside the odd entries")
        server.wait_until(lambda: not any(landing.iterdir()), 60, "landing/ to be empty")
        assert len(list(quarantine.glob("*.reason.txt"))) == len(expected)
        assert "FAILURE" not in server.sensor_tick_statuses("landing_sensor")

        # A file written in place, a few lines at a time for 8 s: loaded once, when complete.
        content = day_file(tmp_path, "2013-01-03")
        lines = content.splitlines(keepends=True)

        def write_slowly():
            with (landing / "sales_2013-01-03.csv").open("wb") as out:
                for start in range(0, len(lines), len(lines) // 20):
                    out.write(b"".join(lines[start:start + len(lines) // 20]))
                    out.flush()
                    time.sleep(0.4)

        writer = threading.Thread(target=write_slowly)
        writer.start()
        wait_for_features(server, 3, "the slowly written file")
        writer.join()
        assert len(server.runs_for_partition("sales_2013-01-03.csv")) == 1
        (archived,) = (archive / "sales_2013-01-03.csv").iterdir()
        assert archived.read_bytes() == content

        # A load whose file cannot leave landing/: its rows commit, the run fails plainly, the rows stay
        # unverified and out of a manual materialization downstream; once fixed, the retry takes it.
        (landed,) = land(data, first=date(2013, 1, 4), days=1)
        stuck = landed.path
        chattr(stuck, "+i")
        try:
            server.wait_until(lambda: finished_runs(server, stuck.name, "FAILURE"), 120, "the load to fail")
            (message,) = server.step_failures(finished_runs(server, stuck.name, "FAILURE")[0]["runId"])
            assert "rows were committed" in message and "could not be removed from landing/" in message
            manual = server.launch(("cleaned", "sales"), ("features", "sales_features"))
            server.wait_until(lambda: any(r["runId"] == manual and r["status"] == "SUCCESS" for r in server.runs()),
                              120, "the manual materialization")
            assert features_rows(server) == FIRST_DAY_ROWS + 2 * DAY_ROWS  # the unverified day did not flow
            server.wait_until(lambda: len(finished_runs(server, stuck.name, "FAILURE")) >= 2, 60,
                              "the sensor to try the load again")
        finally:
            chattr(stuck, "-i")
        wait_for_features(server, 4, "the retried load")

        # A file that vanished before its run read it (the run waits for a slot of the writers' pool,
        # then fails), landed again with the same bytes: loaded, not ignored.
        server.wait_until(server.idle, 120, "no run to hold the duckdb pool")
        set_writer_slots(server, 0)
        try:
            (landed,) = land(data, first=date(2013, 1, 5), days=1)
            vanished, content = landed.path, landed.path.read_bytes()
            server.wait_until(lambda: any(r["status"] in ("QUEUED", "STARTED")
                                          for r in server.runs_for_partition(vanished.name)),
                              120, "its run to wait for a writer's slot")
            vanished.unlink()
            time.sleep(1)
        finally:
            set_writer_slots(server, 1)
        server.wait_until(lambda: finished_runs(server, vanished.name, "FAILURE"), 120, "the run to fail")
        time.sleep(5)  # the sensor sees it gone
        temporary = landing / f".{vanished.name}.tmp"
        temporary.write_bytes(content)
        os.utime(temporary, (time.time() - 10, time.time() - 10))
        temporary.rename(vanished)
        wait_for_features(server, 5, "the file landed again")

        # A header-only store master: every sales file checked against it fails store_in_master.
        # The good master landed again (a revert) loads, the failed file is checked again, and
        # the flow resumes: no manual run, no re-landing of sales.
        (good_master,) = (archive / "store.csv").iterdir()
        (landing / "store.csv").write_bytes(good_master.read_bytes().splitlines(keepends=True)[0])
        server.wait_until(lambda: (server.latest_materialization("raw", "stores") or {}).get("dagster/row_count") == 0,
                          120, "the bad master to load")
        land(data, first=date(2013, 1, 6), days=1)
        server.wait_until(lambda: finished_runs(server, "sales_2013-01-06.csv", "FAILURE"), 120,
                          "its checks to fail against the bad master")
        (landing / "store.csv").write_bytes(good_master.read_bytes())
        wait_for_features(server, 6, "the fixed store master")
        server.wait_until(server.idle, 120, "all runs to finish")
        runs = server.runs()

    assert len(list((archive / "store.csv").iterdir())) == 3  # good, bad, good: every version kept
    rows = dict(server.query("SELECT _source_file, count(*) FROM raw.sales GROUP BY 1"))
    assert rows == {"sales_2013-01-01.csv": FIRST_DAY_ROWS,
                    **{f"sales_2013-01-0{d}.csv": DAY_ROWS for d in range(2, 7)}}  # each file once
    assert server.query("SELECT count(*), count(DISTINCT (store, date)) FROM features.sales_features") == [
        (FIRST_DAY_ROWS + 5 * DAY_ROWS,) * 2]
    assert list(landing.iterdir()) == []
    by_recheck_sensor = [r for r in runs if {"key": SENSOR_NAME_TAG, "value": RECHECK_SENSOR} in r["tags"]]
    # its recheck of the failed file; and, when the fixed master's own run built the layers before that
    # recheck got the writers' pool, its follow-up through them (the layers had held the file back)
    rechecks = [r for r in by_recheck_sensor
                if not any(t["key"] == RUN_KEY_TAG and t["value"].startswith(FOLLOW_UP_KEY) for t in r["tags"])]
    assert [r["status"] for r in rechecks] == ["SUCCESS"]
    assert all(r["status"] == "SUCCESS" for r in by_recheck_sensor) and len(by_recheck_sensor) <= 2
    loads = Counter(t["value"] for r in runs if r["status"] == "SUCCESS" for t in r["tags"]
                    if t["key"] == "dagster/partition" and r not in rechecks)
    # every sales file committed once (2013-01-06 loaded too, but its run failed on its checks)
    assert loads == {f"sales_2013-01-0{d}.csv": 1 for d in range(1, 6)}
