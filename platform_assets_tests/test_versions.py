"""Versions are lake snapshots: one per materialization; rollback round-trips as a new snapshot; data versions are
deterministic; maintenance keeps the file count bounded."""

import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from polars.testing import assert_frame_equal

from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.resources import LandingZone, Warehouse
from platform_assets.automation.maintenance import lake_maintenance
from platform_assets.sample_data.land import land
from platform_assets.warehouse import digests, maintenance, snapshots
from platform_assets_tests.conftest import lake, load_raw

TABLES = ("cleaned.sales", "features.sales_features")


def snapshot(data_dir, table) -> pl.DataFrame:
    with lake(data_dir) as conn:
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


def history(data_dir, table):
    with lake(data_dir) as conn:
        return snapshots.history(conn, table)


def rollback(data_dir, table, version, instance):
    with lake(data_dir, read_only=False) as conn:
        done = snapshots.rollback(conn, table, version)
    snapshots.record_rollback(instance, done)
    return done


def test_versions_and_rollback_round_trip(data_dir, load, resources, instance):
    first = land_and_build(data_dir, load, resources, instance, days=3)
    before = {t: snapshot(data_dir, t) for t in TABLES}
    second = land_and_build(data_dir, load, resources, instance, days=2)
    after = {t: snapshot(data_dir, t) for t in TABLES}
    assert after["cleaned.sales"].height == before["cleaned.sales"].height + 2 * 1115

    for key, table in (("cleaned/sales", "cleaned.sales"), ("features/sales_features", "features.sales_features")):
        versions = history(data_dir, table)
        assert [h["version"] for h in versions] == [second[key].metadata["snapshot"].value,
                                                    first[key].metadata["snapshot"].value]
        assert [h["run_id"] for h in versions] == [second["run_id"], first["run_id"]]
        assert [h["rows"] for h in versions] == [after[table].height, before[table].height]
        assert versions[0]["data_version"] == second[key].metadata["data_version"].value
        assert second[key].tags["dagster/data_version"] == versions[0]["data_version"]
        with lake(data_dir) as conn:  # the snapshot a materialization names holds exactly its rows
            assert conn.sql(f"SELECT count(*) FROM {table} AT (VERSION => {versions[1]['version']})").fetchall() == [
                (before[table].height,)]

    # roll cleaned back to the first version: the lake holds exactly its rows, as a new snapshot
    old, new = (m.metadata["snapshot"].value for m in (first["cleaned/sales"], second["cleaned/sales"]))
    done = rollback(data_dir, "cleaned.sales", old, instance)
    assert done["new_version"] > new and done["rows"] == before["cleaned.sales"].height
    assert_frame_equal(snapshot(data_dir, "cleaned.sales"), before["cleaned.sales"])
    assert done["data_version"] == first["cleaned/sales"].metadata["data_version"].value
    recorded = instance.get_latest_materialization_event(cleaned_sales.key).asset_materialization
    assert recorded.metadata["action"].value == f"rollback to version {old}"
    assert history(data_dir, "cleaned.sales")[0] | {"time": None} == {
        "version": done["new_version"], "time": None, "action": f"rollback to {old}", "run_id": None,
        "rows": before["cleaned.sales"].height, "data_version": done["data_version"],
        "high_water": history(data_dir, "cleaned.sales")[2]["high_water"]}
    with lake(data_dir) as conn:
        # the watermark went back too
        assert conn.sql("SELECT high_water FROM ops.watermarks WHERE table_name = 'cleaned.sales'").fetchall()[0][0] < \
            conn.sql("SELECT max(loaded_at) FROM ops.landed_files").fetchall()[0][0]
        # the table kept its identity: its change feed runs across the rollback (the 2 newer days went away)
        changes = dict(conn.sql(f"SELECT change_type, count(*) FROM ducklake_table_changes('lake', 'cleaned', 'sales', {new + 1}, "
                                f"{done['new_version']}) GROUP BY ALL").fetchall())
    assert changes["delete"] == after["cleaned.sales"].height and changes["insert"] == before["cleaned.sales"].height

    # and forward again
    rollback(data_dir, "cleaned.sales", new, instance)
    assert_frame_equal(snapshot(data_dir, "cleaned.sales"), after["cleaned.sales"])
    # the next incremental run continues from the restored state and changes nothing
    rebuilt = build(resources, instance)
    assert rebuilt["cleaned/sales"].metadata["rows_written"].value == 0
    assert_frame_equal(snapshot(data_dir, "features.sales_features"), after["features.sales_features"])


def test_an_incremental_run_commits_only_its_days_and_the_digest_matches_the_table(
        data_dir, load, resources, instance):
    land_and_build(data_dir, load, resources, instance, first=date(2013, 1, 30), days=3)  # Jan 30 .. Feb 1
    latest = land_and_build(data_dir, load, resources, instance, days=1)  # Feb 2
    version = latest["cleaned/sales"].metadata["snapshot"].value
    with lake(data_dir) as conn:  # the snapshot's changes are the one new day, nothing rewritten
        changes = conn.sql(f"SELECT change_type, count(*), min(date), max(date) FROM "
                           f"ducklake_table_changes('lake', 'cleaned', 'sales', {version}, {version}) GROUP BY ALL").fetchall()
    assert changes == [("insert", 1115, date(2013, 2, 2), date(2013, 2, 2))]
    with lake(data_dir, read_only=False) as conn:  # the maintained digest equals a full recomputation
        for table in TABLES:
            maintained = digests.data_version(conn, table)
            digests.recompute_digest(conn, table)
            assert digests.data_version(conn, table) == maintained


def test_the_same_files_give_the_same_data_versions(tmp_path, instance):
    seen = []
    for name in ("one", "two"):
        data_dir = tmp_path / name / "data"
        resources = {"landing": LandingZone(data_dir=str(data_dir)),
                     "warehouse": Warehouse.embedded(data_dir)}
        land(data_dir, days=3)
        assert load_raw(instance, resources).success
        for day in (1, 2, 3):
            assert load_raw(instance, resources, f"sales_2013-01-0{day}.csv").success
        built = build(resources, instance)
        seen.append({k: m.metadata["data_version"].value for k, m in built.items() if k != "run_id"})
    assert seen[0] == seen[1]
    assert seen[0]["cleaned/sales"] != seen[0]["features/sales_features"]


def maintain(instance, data_dir, **settings) -> dict:
    """Run the maintenance job; its output metadata."""
    result = lake_maintenance.execute_in_process(
        resources={"warehouse": Warehouse.embedded(data_dir, **settings)}, instance=instance)
    (output,) = [e for e in result.all_events if e.is_successful_output]
    return {k: v.value for k, v in output.step_output_data.metadata.items()}


def test_maintenance_after_60_daily_loads_compacts_files_and_expires_versions_past_retention(
        data_dir, load, resources, instance):
    store, *days = land(data_dir, days=60)
    assert load().success
    for number, day in enumerate(days, start=1):  # 60 daily files, the layers following every 10 days
        assert load(day.path.name).success
        if number % 10 == 0:
            build(resources, instance)
    versions = history(data_dir, "cleaned.sales")
    every_table = (*TABLES, "raw.sales", "ops.landed_files")

    def rows_at(version: int | None = None) -> dict:
        at = "" if version is None else f" AT (VERSION => {version})"
        with lake(data_dir) as conn:
            return {t: conn.sql(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {t}{at}").fetchall() for t in every_table}

    # every other state of the features (all four tables exist from the first on)
    old = {v["version"]: rows_at(v["version"]) for v in history(data_dir, "features.sales_features")[::2]}
    rows = rows_at()
    data_versions = {t: history(data_dir, t)[0]["data_version"] for t in TABLES}

    compacted = maintain(instance, data_dir)  # the default retention and reader grace keep every version
    print(f"\nmaintenance after 60 daily loads: {compacted}")
    assert compacted["compacted"] >= 60  # the 60 daily raw files at least
    assert compacted["live_data_files_after"] < compacted["live_data_files_before"] / 4
    assert compacted["snapshots_expired"] == 0 and compacted["files_deleted"] == 0
    # nothing a kept version reads is gone: the small files stay on disk beside their compacted copy
    assert compacted["files_on_disk_after"] > compacted["files_on_disk_before"]
    assert {version: rows_at(version) for version in old} == old  # every table reads as it was, then and now
    assert rows_at() == rows
    with lake(data_dir, read_only=False) as conn:  # the same content: the data versions hold
        assert {t: digests.data_version(conn, t) for t in TABLES} == data_versions
        for table in TABLES:
            digests.recompute_digest(conn, table)
        assert {t: digests.data_version(conn, t) for t in TABLES} == data_versions

    expired = maintain(instance, data_dir, version_retention_hours=0, reader_grace_hours=0)
    print(f"with a retention and a reader grace of 0 hours: {expired}")
    assert expired["snapshots_after"] == 1 and expired["snapshots_expired"] == expired["snapshots_before"] - 1
    assert expired["files_deleted"] >= 60  # the 60 daily raw files compacted away, and any old layer file
    assert expired["files_on_disk_after"] < 15
    with lake(data_dir) as conn:  # what is left on disk is exactly what the current snapshot reads
        read = {Path(path) for schema, table in maintenance.lake_tables(conn) for row in conn.execute(
            "SELECT data_file, delete_file FROM ducklake_list_files('lake', ?, schema => ?)", [table, schema]).fetchall()
            for path in row if path}
    assert {p for p in (data_dir / "lake").rglob("*") if p.is_file()} == read
    assert rows_at() == rows  # the same rows, in fewer files
    with pytest.raises(snapshots.VersionError, match="can no longer be restored"):
        rollback(data_dir, "cleaned.sales", versions[-1]["version"], instance)


def test_the_cli_lists_versions_and_refuses_unknown_ones(data_dir, load, resources, instance, tmp_path):
    land_and_build(data_dir, load, resources, instance, days=1)
    env = {**__import__("os").environ, "PLATFORM_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("")
    cli = [sys.executable, "-m", "platform_assets.cli"]
    listed = subprocess.run([*cli, "versions", "cleaned.sales"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and "materialize" in listed.stdout and "1,114" in listed.stdout
    refused = subprocess.run([*cli, "rollback", "cleaned.sales", "--version", "5"], env=env,
                             capture_output=True, text=True)
    (version,) = [h["version"] for h in history(data_dir, "cleaned.sales")]
    assert refused.returncode == 1 and f"cleaned.sales has no version 5; versions: [{version}]" in refused.stderr
    negative = subprocess.run([*cli, "rollback", "cleaned.sales", "--version", "-1"], env=env,
                              capture_output=True, text=True)
    assert negative.returncode == 1 and negative.stderr == (
        f"platform-assets rollback: cleaned.sales has no version -1; versions: [{version}]\n")  # not "expired"
    done = subprocess.run([*cli, "rollback", "cleaned.sales", "--version", str(version)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0 and f"as new version {history(data_dir, 'cleaned.sales')[0]['version']}" in done.stdout


def test_the_cli_queries_the_lake_read_only(data_dir, load, resources, instance):
    land_and_build(data_dir, load, resources, instance, days=1)
    env = {**__import__("os").environ, "PLATFORM_DATA_DIR": str(data_dir)}
    cli = [sys.executable, "-m", "platform_assets.cli", "sql"]
    counted = subprocess.run([*cli, "SELECT count(*) AS n FROM cleaned.sales"], env=env, capture_output=True, text=True)
    assert counted.returncode == 0 and "1114" in counted.stdout  # one store is missing one day
    refused = subprocess.run([*cli, "DELETE FROM cleaned.sales"], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr == (
        "platform-assets sql: DELETE statements are refused: a reader only reads the lake's tables "
        "(SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)\n")
    assert snapshot(data_dir, "cleaned.sales").height == 1114
