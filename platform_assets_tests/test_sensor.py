"""The landing sensor against a real Dagster instance: one decided outcome per entry, one load per landing.

The end-to-end versions of these cases, against a running `dagster dev`, are in e2e/test_trust.py.
"""

import os
import subprocess
import time
from datetime import date

import dagster as dg
import pytest

from platform_assets_tests.conftest import landing_sensor, load_raw, raw_sales, raw_stores, sales_files
from platform_assets.definitions import assets as ASSETS
from platform_assets.definitions import checks as CHECKS
from platform_assets.sample_data.land import land
from platform_assets_tests.fixtures.odd_entries import odd_entries


@pytest.fixture
def tick(instance, landing, monkeypatch):
    """Evaluate the sensor like the daemon does: apply its partition requests, carry its cursor.

    Files written by the tests themselves count as complete at once (no quiet period) unless a
    test sets PLATFORM_LANDING_QUIET_SECONDS.
    """
    monkeypatch.setenv("PLATFORM_LANDING_QUIET_SECONDS", "0")
    state = {"cursor": None}

    def _tick() -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, cursor=state["cursor"], resources={"landing": landing})
        result = landing_sensor(context)
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        state["cursor"] = result.cursor
        return result

    return _tick


@pytest.fixture
def master_loaded(data_dir, instance, resources):
    """The store master landed and was loaded (and archived), as after the first tick's run."""
    land(data_dir, days=1, first=date(2012, 12, 31))  # lands store.csv (and a day we do not use)
    (data_dir / "landing" / "sales_2012-12-31.csv").unlink()
    assert dg.materialize([raw_stores], instance=instance, resources=resources).success


def selection(request: dg.RunRequest) -> list[str]:
    return [key.to_user_string() for key in request.asset_selection]


def requested(result) -> list[tuple[str, str]]:
    return sorted((r.partition_key or "", r.asset_selection[0].to_user_string()) for r in result.run_requests)


def test_sales_files_wait_for_the_store_master(tick, data_dir, instance, resources):
    land(data_dir, days=2)
    assert requested(tick()) == [("", "raw/stores")]  # sales wait: their checks need the master
    assert instance.get_dynamic_partitions(sales_files.name) == []
    assert dg.materialize([raw_stores], instance=instance, resources=resources).success
    assert [p for p, _ in requested(tick())] == ["sales_2013-01-01.csv", "sales_2013-01-02.csv"]


def test_a_new_file_gives_one_run_and_one_partition(tick, data_dir, instance, master_loaded):
    land(data_dir, days=1)
    assert requested(tick()) == [("sales_2013-01-01.csv", "raw/sales")]
    assert instance.get_dynamic_partitions(sales_files.name) == ["sales_2013-01-01.csv"]


def test_a_lone_file_is_carried_through_every_layer_in_one_run_a_burst_or_a_busy_instance_is_not(
        tick, data_dir, instance, resources, master_loaded):
    assert load_raw(instance, resources).success  # the master's checks verify it for cleaned
    land(data_dir, days=1)
    (lone,) = tick().run_requests
    assert selection(lone) == ["raw/sales", "cleaned/sales", "features/sales_features"]
    result = dg.materialize([*ASSETS, *CHECKS], selection=lone.asset_selection, partition_key=lone.partition_key,
                            instance=instance, resources=resources)
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == set(selection(lone))
    checked = {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()}
    assert checked == {"raw/sales", "cleaned/sales", "features/sales_features"}  # every layer's contract ran

    land(data_dir, days=2)  # a burst: raw only, downstream_automation folds them into one run
    assert [selection(r) for r in tick().run_requests] == [["raw/sales"], ["raw/sales"]]

    instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED,
                                   asset_selection=frozenset({raw_sales.key})))
    land(data_dir, days=1)  # alone, but a load is running: raw only
    assert [selection(r) for r in tick().run_requests] == [["raw/sales"]]


def test_the_same_content_as_loaded_is_dropped_as_a_duplicate(tick, data_dir, instance, resources, master_loaded):
    land(data_dir, days=1)
    tick()
    assert tick().run_requests == []  # still waiting for its load: left in place
    assert (data_dir / "landing" / "sales_2013-01-01.csv").exists()
    assert load_raw(instance, resources, "sales_2013-01-01.csv").success  # loaded and archived
    land(data_dir, first=date(2013, 1, 1), days=1)  # the same bytes again
    assert tick().run_requests == []
    assert not (data_dir / "landing" / "sales_2013-01-01.csv").exists()
    assert instance.get_dynamic_partitions(sales_files.name) == ["sales_2013-01-01.csv"]


def test_three_files_in_one_tick_become_three_partitions(tick, data_dir, instance, master_loaded):
    land(data_dir, days=3)
    assert [p for p, _ in requested(tick())] == ["sales_2013-01-01.csv", "sales_2013-01-02.csv", "sales_2013-01-03.csv"]
    assert len(instance.get_dynamic_partitions(sales_files.name)) == 3


def test_a_changed_store_master_reloads_stores_and_a_changed_file_reloads_its_partition(tick, data_dir,
                                                                                      master_loaded):
    land(data_dir, days=1)
    tick()
    land(data_dir, stores=True, seed=7, first=date(2013, 1, 2), days=1)  # a different store master
    sales = data_dir / "landing" / "sales_2013-01-01.csv"
    sales.write_text(sales.read_text() + "\n")  # same name, new content
    again = tick()
    assert requested(again) == [("", "raw/stores"), ("sales_2013-01-01.csv", "raw/sales"),
                                ("sales_2013-01-02.csv", "raw/sales")]
    assert list(again.dynamic_partitions_requests[0].partition_keys) == ["sales_2013-01-02.csv"]
    assert len({r.run_key for r in again.run_requests}) == 3


def test_every_landing_of_different_content_gets_its_own_run_key_even_a_revert(tick, data_dir, instance,
                                                                             resources, master_loaded):
    """Dagster never runs a run key twice: content landed again after a change must not reuse one."""
    land(data_dir, days=1)
    path = data_dir / "landing" / "sales_2013-01-01.csv"
    good = path.read_bytes()
    keys = []
    for content in (good, good + b"\n", good):  # good, a change, the good content again
        path.write_bytes(content)
        (request,) = tick().run_requests
        keys.append(request.run_key)
        assert load_raw(instance, resources, "sales_2013-01-01.csv", tags=request.tags).success
    assert len(set(keys)) == 3
    assert len(list((data_dir / "archive" / "sales_2013-01-01.csv").iterdir())) == 3  # nothing overwritten


def test_files_being_written_are_ignored(tick, data_dir, master_loaded):
    (data_dir / "landing" / ".sales_2013-01-01.csv.tmp").write_text("Store,DayOfWeek")
    assert tick().run_requests == []
    assert (data_dir / "landing" / ".sales_2013-01-01.csv.tmp").exists()


def test_a_file_changed_within_the_quiet_period_waits(tick, data_dir, master_loaded, monkeypatch):
    land(data_dir, days=1)
    path = data_dir / "landing" / "sales_2013-01-01.csv"
    monkeypatch.setenv("PLATFORM_LANDING_QUIET_SECONDS", "2")
    path.write_bytes(path.read_bytes())  # written just now, in place
    assert tick().run_requests == []
    time.sleep(2.1)
    assert requested(tick()) == [("sales_2013-01-01.csv", "raw/sales")]


def test_a_modification_time_in_the_future_still_settles(tick, data_dir, master_loaded, monkeypatch):
    land(data_dir, days=1)
    path = data_dir / "landing" / "sales_2013-01-01.csv"
    monkeypatch.setenv("PLATFORM_LANDING_QUIET_SECONDS", "1")
    future = time.time() + 3600
    os.utime(path, (future, future))
    assert tick().run_requests == []  # first seen now
    time.sleep(1.1)
    assert requested(tick()) == [("sales_2013-01-01.csv", "raw/sales")]  # unchanged for the quiet period


def test_duplicates_under_another_name_and_unknown_files_are_quarantined(tick, data_dir, master_loaded):
    land(data_dir, days=1)
    tick()
    landing = data_dir / "landing"
    (landing / "sales_2013-02-01.csv").write_bytes((landing / "sales_2013-01-01.csv").read_bytes())
    (landing / "notes.txt").write_text("hello")
    assert tick().run_requests == []
    quarantine = data_dir / "quarantine"
    assert "same content as sales_2013-01-01.csv" in (quarantine / "sales_2013-02-01.csv.reason.txt").read_text()
    reason = (quarantine / "notes.txt.reason.txt").read_text()
    assert "not a file the platform knows; expected " in reason
    for shown in ("store.csv", "sales_<YYYY-MM-DD>[_<YYYY-MM-DD>].csv", "store_states.csv",
                  "weather_<YYYY-MM-DD>[_<YYYY-MM-DD>].csv"):  # every declared dataset's pattern
        assert shown in reason, reason
    assert (quarantine / "notes.txt").read_text() == "hello"


def test_odd_entries_are_quarantined_with_a_reason_and_never_stop_the_good_file(tick, data_dir, master_loaded):
    landing, quarantine = data_dir / "landing", data_dir / "quarantine"
    land(data_dir, days=1)
    expected = odd_entries(landing)

    assert requested(tick()) == [("sales_2013-01-01.csv", "raw/sales")]  # the good file beside them

    assert sorted(p.name for p in landing.iterdir()) == ["sales_2013-01-01.csv"]
    reasons = {p.name: p.read_text() for p in quarantine.glob("*.reason.txt")}
    assert len(reasons) == len(expected)
    for name, phrase in expected.items():
        printable = os.fsencode(name).decode("utf-8", "backslashreplace")
        (reason,) = [text for text in reasons.values() if text.startswith(printable + ":")]
        assert phrase in reason
    for reason_file in quarantine.glob("*.reason.txt"):
        assert len(os.fsencode(reason_file.name)) <= 255
        assert os.path.lexists(str(reason_file)[: -len(".reason.txt")])  # the entry sits beside its reason
    long_reason = next(t for t in reasons.values() if "x" * 50 in t)
    assert "quarantined as" in long_reason  # renamed, and says so
    assert (quarantine / "sales_2013-01-08.csv").is_symlink()  # the link itself, not what it points to


def test_an_entry_that_cannot_be_moved_is_logged_and_the_rest_is_handled(tick, data_dir, master_loaded, capsys):
    (data_dir / "quarantine").write_text("a file where the quarantine folder should be")
    land(data_dir, days=1)
    (data_dir / "landing" / "notes.txt").write_text("hello")
    assert requested(tick()) == [("sales_2013-01-01.csv", "raw/sales")]
    assert "notes.txt: not handled this tick (FileExistsError" in capsys.readouterr().err  # the sensor's log
    assert (data_dir / "landing" / "notes.txt").exists()


def test_a_file_back_in_landing_after_its_load_failed_is_loaded_again(tick, data_dir, instance, resources,
                                                                       master_loaded):
    """Removed before its run read it (the run fails), then landed again with the same bytes."""
    land(data_dir, days=1)
    path = data_dir / "landing" / "sales_2013-01-01.csv"
    content = path.read_bytes()
    (first,) = tick().run_requests
    path.unlink()
    failed = load_raw(instance, resources, "sales_2013-01-01.csv")
    assert not failed.success
    assert "neither in" in failed.failure_data_for_node("raw__sales").error.message
    assert tick().run_requests == []  # gone: nothing to do
    path.write_bytes(content)
    (again,) = tick().run_requests
    assert again.partition_key == "sales_2013-01-01.csv" and again.run_key != first.run_key


def run_request(instance, resources, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Execute a sensor's run request in process, as the daemon would launch it."""
    return load_raw(instance, resources, request.partition_key, tags={"dagster/run_key": request.run_key,
                                                                      **request.tags})


@pytest.fixture
def immutable():
    """chattr +i: not even root may remove the file; undone after the test."""
    made = []

    def _immutable(path, on: bool = True):
        subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)
        made.append(path)

    yield _immutable
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_file_whose_load_failed_is_retried_with_a_back_off_and_reported_when_stuck(
        tick, data_dir, instance, resources, master_loaded, monkeypatch, capsys, immutable, query):
    monkeypatch.setenv("PLATFORM_LANDING_RETRY_SECONDS", "1")
    monkeypatch.setenv("PLATFORM_LANDING_STUCK_SECONDS", "2")
    land(data_dir, days=1)
    path = data_dir / "landing" / "sales_2013-01-01.csv"
    immutable(path)  # its rows commit, but it cannot leave landing/: the load fails after the commit
    (first,) = tick().run_requests
    failed = run_request(instance, resources, first)
    message = failed.failure_data_for_node("raw__sales").error.message
    assert "rows were committed" in message and "could not be removed from landing/ (Operation not permitted)" in message
    assert "Traceback" not in message
    assert query("SELECT status, verified_at FROM ops.landed_files WHERE kind = 'sales'") == [("loaded", None)]  # not verified

    capsys.readouterr()
    assert tick().run_requests == []  # back-off: 1 s after the failure
    assert "ended FAILURE; trying again after a 1s back-off (attempt 2)" in capsys.readouterr().err
    time.sleep(1.1)
    (retry,) = tick().run_requests
    assert retry.run_key != first.run_key and retry.tags == first.tags  # same landing, next attempt
    assert "retrying the load of sales_2013-01-01.csv (attempt 2)" in capsys.readouterr().err
    assert not run_request(instance, resources, retry).success
    time.sleep(1.5)
    stuck = tick()
    assert stuck.run_requests == []  # the back-off doubled
    log = capsys.readouterr().err
    assert "trying again after a 2s back-off (attempt 3)" in log
    assert "STUCK: sales_2013-01-01.csv has waited in landing/" in log
    (observation,) = stuck.asset_events  # on raw/sales, where the UI and the alerts see it
    assert (observation.asset_key.to_user_string(), observation.partition) == ("raw/sales", "sales_2013-01-01.csv")
    assert observation.metadata["landing_outcome"].value == "stuck in landing"
    assert "its load failed 2 time(s)" in observation.metadata["reason"].value
    assert tick().asset_events == []
    assert "STUCK" not in capsys.readouterr().err  # reported once

    immutable(path, on=False)  # an operator fixes the permissions
    time.sleep(1)
    (third,) = tick().run_requests
    assert run_request(instance, resources, third).success
    assert not path.exists()
    assert query("SELECT status, verified_at IS NOT NULL FROM ops.landed_files WHERE kind = 'sales'") == [("loaded", True)]
