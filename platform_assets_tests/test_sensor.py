"""The landing sensor against a real Dagster instance: one load per new content, nothing lost."""

from datetime import date

import dagster as dg
import pytest

from platform_assets.assets.raw import raw_stores, sales_files
from platform_assets.automation.landing_sensor import landing_sensor
from platform_assets.sample_data.land import land


@pytest.fixture
def tick(instance, landing):
    """Evaluate the sensor like the daemon does: apply its partition requests, carry its cursor."""
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


def test_the_same_file_again_gives_nothing(tick, data_dir, instance, master_loaded):
    land(data_dir, days=1)
    tick()
    assert tick().run_requests == []  # still waiting for its load: left in place
    assert (data_dir / "landing" / "sales_2013-01-01.csv").exists()
    # loaded and archived, then landed again with the same content: dropped, not reloaded
    (data_dir / "landing" / "sales_2013-01-01.csv").rename(data_dir / "archive" / "sales_2013-01-01.csv")
    land(data_dir, first=date(2013, 1, 1), days=1)
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


def test_files_being_written_are_ignored(tick, data_dir, master_loaded):
    (data_dir / "landing" / ".sales_2013-01-01.csv.tmp").write_text("Store,DayOfWeek")
    assert tick().run_requests == []
    assert (data_dir / "landing" / ".sales_2013-01-01.csv.tmp").exists()


def test_duplicates_under_another_name_and_unknown_files_are_quarantined(tick, data_dir, master_loaded):
    land(data_dir, days=1)
    tick()
    landing = data_dir / "landing"
    (landing / "sales_2013-02-01.csv").write_bytes((landing / "sales_2013-01-01.csv").read_bytes())
    (landing / "notes.txt").write_text("hello")
    assert tick().run_requests == []
    quarantine = data_dir / "quarantine"
    assert "same content as sales_2013-01-01.csv" in (quarantine / "sales_2013-02-01.csv.reason.txt").read_text()
    assert "not a file the platform knows" in (quarantine / "notes.txt.reason.txt").read_text()
    assert (quarantine / "notes.txt").read_text() == "hello"
