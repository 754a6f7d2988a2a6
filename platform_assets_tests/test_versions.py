"""Versioned tables: every materialization a Delta version; rollback round-trips; data versions are deterministic."""

import subprocess
import sys
from datetime import date

import dagster as dg
import deltalake
import duckdb
import polars as pl
import pytest

from polars.testing import assert_frame_equal

from platform_assets import versions
from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.resources import LandingZone, Warehouse
from platform_assets.rollback import rollback
from platform_assets.sample_data.land import land
from platform_assets_tests.conftest import load_raw

TABLES = ("cleaned.sales", "features.sales_features")


def snapshot(warehouse_path, table) -> pl.DataFrame:
    with duckdb.connect(str(warehouse_path), read_only=True) as conn:
        return conn.sql(f"SELECT * EXCLUDE (_updated_at) FROM {table} ORDER BY store, date").pl()


def build(resources, instance):
    """Materialize cleaned and features; their materializations by key, plus the run id under "run_id"."""
    result = dg.materialize([cleaned_sales, sales_features], resources=resources, instance=instance)
    return {"run_id": result.run_id,
            **{e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}}


def land_and_build(data_dir, load, resources, instance, **land_args):
    for landed in land(data_dir, **land_args):
        assert load(None if landed.path.name == "store.csv" else landed.path.name).success
    return build(resources, instance)


def test_versions_and_rollback_round_trip(data_dir, load, resources, instance, warehouse_path):
    first = land_and_build(data_dir, load, resources, instance, days=3)
    before = {t: snapshot(warehouse_path, t) for t in TABLES}
    second = land_and_build(data_dir, load, resources, instance, days=2)
    after = {t: snapshot(warehouse_path, t) for t in TABLES}
    assert after["cleaned.sales"].height == before["cleaned.sales"].height + 2 * 1115

    warehouse = resources["warehouse"]
    for key, table in (("cleaned/sales", "cleaned.sales"), ("features/sales_features", "features.sales_features")):
        history = versions.history(warehouse.versions_path, table)
        assert [h["version"] for h in history] == [1, 0]
        assert [h["run_id"] for h in history] == [second["run_id"], first["run_id"]]
        assert [h["rows"] for h in history] == [after[table].height, before[table].height]
        assert history[0]["data_version"] == second[key].metadata["data_version"].value
        assert second[key].metadata["delta_version"].value == 1
        assert second[key].tags["dagster/data_version"] == history[0]["data_version"]

    # roll cleaned back to version 0: DuckDB holds exactly version 0's rows, as new version 2
    done = rollback(warehouse, "cleaned.sales", 0, instance)
    assert (done["restored_version"], done["new_version"], done["rows"]) == (0, 2, before["cleaned.sales"].height)
    assert_frame_equal(snapshot(warehouse_path, "cleaned.sales"), before["cleaned.sales"])
    assert done["data_version"] == first["cleaned/sales"].metadata["data_version"].value
    recorded = instance.get_latest_materialization_event(cleaned_sales.key).asset_materialization
    assert recorded.metadata["action"].value == "rollback to version 0"
    assert versions.history(warehouse.versions_path, "cleaned.sales")[0]["action"] == "rollback to 0"
    with duckdb.connect(str(warehouse_path), read_only=True) as conn:  # the watermark went back too
        assert conn.sql("SELECT high_water FROM ops.watermarks WHERE table_name = 'cleaned.sales'").fetchall()[0][0] < \
            conn.sql("SELECT max(loaded_at) FROM ops.landed_files").fetchall()[0][0]

    # and forward again
    rollback(warehouse, "cleaned.sales", 1, instance)
    assert_frame_equal(snapshot(warehouse_path, "cleaned.sales"), after["cleaned.sales"])
    # the next incremental run continues from the restored state and changes nothing
    rebuilt = build(resources, instance)
    assert rebuilt["cleaned/sales"].metadata["rows_written"].value == 0
    assert_frame_equal(snapshot(warehouse_path, "features.sales_features"), after["features.sales_features"])


def test_an_incremental_run_republishes_only_its_months_and_the_version_matches_duckdb(
        data_dir, load, resources, instance, warehouse_path):
    land_and_build(data_dir, load, resources, instance, first=date(2013, 1, 30), days=3)  # Jan 30 .. Feb 1
    land_and_build(data_dir, load, resources, instance, days=1)  # Feb 2
    warehouse = resources["warehouse"]
    latest = versions.read_version(warehouse.versions_path, "cleaned.sales", 1)
    utc = pl.col("_loaded_at").dt.convert_time_zone("UTC")  # Delta names the zone Etc/UTC
    assert_frame_equal(latest.drop("_updated_at").with_columns(utc).sort("store", "date"),
                       snapshot(warehouse_path, "cleaned.sales").with_columns(utc))
    with duckdb.connect(str(warehouse_path)) as conn:  # the maintained digest equals a full recomputation
        for table in TABLES:
            maintained = versions.data_version(conn, table)
            versions.recompute_digest(conn, table)
            assert versions.data_version(conn, table) == maintained
    def files(version: int, month: str) -> set[str]:
        table = deltalake.DeltaTable(str(warehouse.versions_path / "cleaned.sales"), version=version)
        return {uri for uri in table.file_uris() if f"_month={month}/" in uri}

    assert files(1, "2013-01") == files(0, "2013-01")  # version 1 rewrote only the month it changed
    assert files(1, "2013-02") and not files(1, "2013-02") & files(0, "2013-02")


def test_the_same_files_give_the_same_data_versions(tmp_path, instance):
    seen = []
    for name in ("one", "two"):
        data_dir = tmp_path / name / "data"
        resources = {"landing": LandingZone(data_dir=str(data_dir)),
                     "warehouse": Warehouse(database=str(data_dir / "warehouse.duckdb"))}
        land(data_dir, days=3)
        assert load_raw(instance, resources).success
        for day in (1, 2, 3):
            assert load_raw(instance, resources, f"sales_2013-01-0{day}.csv").success
        built = build(resources, instance)
        seen.append({k: m.metadata["data_version"].value for k, m in built.items() if k != "run_id"})
    assert seen[0] == seen[1]
    assert seen[0]["cleaned/sales"] != seen[0]["features/sales_features"]


def test_retention_prunes_old_versions_with_a_clear_error(data_dir, load, resources, instance):
    resources = {**resources, "warehouse": Warehouse(database=resources["warehouse"].database,
                                                     version_retention_hours=0)}
    land_and_build(data_dir, load, resources, instance, days=2)
    build_again = dg.materialize([cleaned_sales], resources=resources, instance=instance,
                                 run_config=dg.RunConfig(ops={"cleaned__sales": {"config": {"full_rebuild": True}}}))
    assert build_again.success
    warehouse = resources["warehouse"]
    assert versions.read_version(warehouse.versions_path, "cleaned.sales", 1).height == 1114 + 1115
    with pytest.raises(versions.VersionError, match="version 0 can no longer be read"):
        versions.read_version(warehouse.versions_path, "cleaned.sales", 0)
    with pytest.raises(versions.VersionError, match="has no version 7"):
        rollback(warehouse, "cleaned.sales", 7, instance)


def test_the_cli_lists_versions_and_refuses_unknown_ones(data_dir, load, resources, instance, tmp_path):
    land_and_build(data_dir, load, resources, instance, days=1)
    env = {**__import__("os").environ, "PLATFORM_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("")
    cli = [sys.executable, "-m", "platform_assets.cli"]
    listed = subprocess.run([*cli, "versions", "cleaned.sales"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and "materialize" in listed.stdout and "1,114" in listed.stdout
    refused = subprocess.run([*cli, "rollback", "cleaned.sales", "--version", "5"], env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "cleaned.sales has no version 5; versions: [0]" in refused.stderr
    done = subprocess.run([*cli, "rollback", "cleaned.sales", "--version", "0"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "as new version 1" in done.stdout
