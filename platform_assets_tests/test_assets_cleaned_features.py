"""Cleaned and feature layers on real generated data: exact, incremental == full, with lineage."""

import shutil
from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest

from polars.testing import assert_frame_equal

from platform_assets.warehouse import digests, tables
from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.config import LayerConfig
from platform_assets.assets.features import sales_features
from platform_assets.resources import LandingZone, Warehouse
from platform_assets.sample_data.land import land
from platform_assets.transforms.features import LAGS, WINDOWS
from platform_assets_tests.conftest import lake, load_raw

DOWNSTREAM = [cleaned_sales, sales_features]


def build(resources, instance, full_rebuild=False) -> dg.ExecuteInProcessResult:
    config = LayerConfig(full_rebuild=full_rebuild)
    run_config = dg.RunConfig(ops={"cleaned__sales": config, "features__sales_features": config})
    return dg.materialize(DOWNSTREAM, resources=resources, instance=instance, run_config=run_config)


def metadata(result, key):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def data_version(data_dir, name) -> str:
    with lake(data_dir) as conn:
        return digests.data_version(conn, name)


def table(data_dir, name) -> pl.DataFrame:
    with lake(data_dir) as conn:
        return conn.sql(f"SELECT * EXCLUDE (_updated_at) FROM {name} ORDER BY store, date").pl()


@pytest.fixture(scope="module")
def full_warehouse(full_history, tmp_path_factory):
    """The whole generated history through raw, cleaned and features (full build)."""
    data_dir = tmp_path_factory.mktemp("layers") / "data"
    shutil.copytree(full_history, data_dir)
    resources = {"landing": LandingZone(data_dir=str(data_dir)),
                 "warehouse": Warehouse.embedded(data_dir)}
    with dg.DagsterInstance.ephemeral() as instance:
        assert load_raw(instance, resources).success
        assert load_raw(instance, resources, "sales_2013-01-01_2015-07-31.csv").success
        result = build(resources, instance)
    return data_dir, result


def test_full_history_builds_one_row_per_store_and_day(full_warehouse):
    path, result = full_warehouse
    assert metadata(result, "cleaned/sales")["dagster/row_count"] == 1_017_209
    assert metadata(result, "features/sales_features")["dagster/row_count"] == 1_017_209
    with lake(path) as conn:
        assert conn.sql("SELECT count(*) FROM (SELECT DISTINCT store, date FROM features.sales_features)").fetchall() == [
            (1_017_209,)]
        assert conn.sql("SELECT count(*) FROM cleaned.sales WHERE quality_issue IS NOT NULL").fetchall() == [(0,)]


def test_every_lag_and_rolling_value_matches_sql_window_functions(full_warehouse):
    path, _ = full_warehouse
    lags = ",\n".join(
        f"(SELECT {col} FROM cleaned.sales p WHERE p.store = c.store AND p.date = c.date - INTERVAL {k} DAY)"
        f" AS {col}_lag_{k}" for k in LAGS for col in ("sales", "customers"))
    windows = ",\n".join(
        f"{fn}(sales) OVER (PARTITION BY store ORDER BY date RANGE BETWEEN INTERVAL {w} DAY PRECEDING "
        f"AND INTERVAL 1 DAY PRECEDING) AS sales_{name}_{w}d"
        for w in WINDOWS for fn, name in (("avg", "mean"), ("stddev_samp", "std")))
    columns = [f"{c}_lag_{k}" for k in LAGS for c in ("sales", "customers")] + [
        f"sales_{n}_{w}d" for w in WINDOWS for n in ("mean", "std")]
    with lake(path) as conn:
        expected = conn.sql(f"SELECT store, date, {lags}, {windows} FROM cleaned.sales c ORDER BY store, date").pl()
        actual = conn.sql(f"SELECT store, date, {', '.join(columns)} FROM features.sales_features "
                          "ORDER BY store, date").pl()
    assert_frame_equal(actual, expected, check_dtypes=False, rel_tol=1e-9, abs_tol=1e-6)
    assert actual["sales_lag_1"].null_count() == 1115 + 180  # first day, and the 180 stores back from the gap


def test_materializations_carry_schema_and_column_lineage_back_to_raw(full_warehouse):
    _, result = full_warehouse
    cleaned = metadata(result, "cleaned/sales")
    features = metadata(result, "features/sales_features")
    cleaned_deps = cleaned["dagster/column_lineage"].deps_by_column
    assert [(d.asset_key.to_user_string(), d.column_name) for d in cleaned_deps["sales"]] == [("raw/sales", "Sales")]
    assert ("raw/stores", "CompetitionDistance") in [
        (d.asset_key.to_user_string(), d.column_name) for d in cleaned_deps["competition_distance"]]
    feature_deps = features["dagster/column_lineage"].deps_by_column
    assert {(d.asset_key.to_user_string(), d.column_name) for d in feature_deps["sales_lag_7"]} == {
        ("cleaned/sales", "date"), ("cleaned/sales", "sales")}
    schema = {c.name: c for c in features["dagster/column_schema"].columns}
    assert schema["sales_mean_28d"].type == "DOUBLE" and "28 calendar days before" in schema["sales_mean_28d"].description
    assert all(c.description for c in schema.values())
    preview = features["preview"]
    assert len(preview.records) == 5 and {r.data["date"] for r in preview.records} == {"2015-07-31"}
    assert cleaned["source_files"] == ["sales_2013-01-01_2015-07-31.csv"]
    # every feature column has lineage, every lineage source is a real cleaned column
    cleaned_columns = {c.name for c in cleaned["dagster/column_schema"].columns}
    assert set(feature_deps) == set(schema) - {"_updated_at"}
    assert {d.column_name for deps in feature_deps.values() for d in deps} <= cleaned_columns


def test_incremental_daily_updates_equal_a_full_rebuild(data_dir, resources, instance, load, monkeypatch):
    start = date(2014, 6, 10)  # crosses the start of the 180-store gap on 2014-07-01
    land(data_dir, batch="all", first=start, days=14)
    assert load().success and load("sales_2014-06-10_2014-06-23.csv").success
    first = build(resources, instance)
    assert metadata(first, "features/sales_features")["mode"] == "full"

    for day in range(14, 40):
        (landed,) = land(data_dir, first=start + timedelta(days=day), days=1)
        assert load(landed.path.name).success
        if day == 20:  # a weekly file overlapping days already loaded: its rows must win
            overlap = land(data_dir, batch="weekly", first=start + timedelta(days=18), days=7)
            assert load(overlap[0].path.name).success
        step = build(resources, instance)
    cleaned, features = metadata(step, "cleaned/sales"), metadata(step, "features/sales_features")
    assert (cleaned["mode"], cleaned["dates_recomputed"], cleaned["rows_written"]) == ("incremental", 1, 935)
    assert features["mode"] == "incremental" and features["rows_written"] < 40 * 935

    overlap_rows = table(data_dir, "cleaned.sales").filter(pl.col("date") == start + timedelta(days=19))
    assert set(overlap_rows["_source_file"]) == {"sales_2014-06-28_2014-07-04.csv"}

    incremental = {name: table(data_dir, name) for name in ("cleaned.sales", "features.sales_features")}
    monkeypatch.setattr(Warehouse, "rows_per_chunk", 5_000)  # the rebuild goes a few days / stores at a time
    with lake(data_dir) as conn:
        assert len(tables.chunks(conn, "cleaned.sales", "date", 5_000)) > 5
        assert len(tables.chunks(conn, "cleaned.sales", "store", 5_000)) > 5
    rebuilt = build(resources, instance, full_rebuild=True)
    assert metadata(rebuilt, "features/sales_features")["mode"] == "full"
    for name, rows in incremental.items():
        assert_frame_equal(rows, table(data_dir, name))
    assert incremental["features.sales_features"].height == 1115 * 21 + 935 * 19


def test_a_new_day_updates_the_days_before_it_only_when_it_brings_a_state_holiday(data_dir, resources, instance,
                                                                                   load):
    land(data_dir, batch="all", first=date(2014, 5, 20), days=30)  # through 2014-06-18
    assert load().success and load("sales_2014-05-20_2014-06-18.csv").success
    build(resources, instance)
    written = {}
    for day in (date(2014, 6, 19), date(2014, 6, 20)):  # Corpus Christi (a holiday in 6 of 12 states), a Friday
        (landed,) = land(data_dir, first=day, days=1)
        assert load(landed.path.name).success
        written[day] = metadata(build(resources, instance), "features/sales_features")["rows_written"]
    assert written[date(2014, 6, 19)] == 31 * 1115  # the day and the 30 before it, which now see the holiday
    assert written[date(2014, 6, 20)] == 1115  # only the day itself
    incremental = table(data_dir, "features.sales_features")
    with lake(data_dir) as conn:  # the day before the holiday, in a state that has it
        (store,) = conn.execute("SELECT min(store) FROM cleaned.sales WHERE date = '2014-06-19' "
                                "AND state_holiday = 'a'").fetchone()
    before = incremental.filter((pl.col("store") == store) & (pl.col("date") == date(2014, 6, 18)))
    assert before["days_until_state_holiday"].to_list() == [1]

    build(resources, instance, full_rebuild=True)
    assert_frame_equal(incremental, table(data_dir, "features.sales_features"))


def test_a_full_rebuild_in_many_chunks_equals_one_in_a_single_chunk(data_dir, resources, instance, load,
                                                                    monkeypatch):
    """Bounded memory does not change a value: cleaned goes by dates, features by stores, and every row and
    column equals the rebuild in one chunk; at the seams every lag and rolling window is what SQL computes."""
    land(data_dir, batch="all", first=date(2014, 5, 1), days=120)  # crosses the 180-store gap on 2014-07-01
    assert load().success and load("sales_2014-05-01_2014-08-28.csv").success
    monkeypatch.setattr(Warehouse, "rows_per_chunk", 10**9)
    build(resources, instance, full_rebuild=True)
    whole = {name: table(data_dir, name) for name in ("cleaned.sales", "features.sales_features")}

    monkeypatch.setattr(Warehouse, "rows_per_chunk", 4_000)
    with lake(data_dir) as conn:
        store_ranges = tables.chunks(conn, "cleaned.sales", "store", 4_000)
        assert len(store_ranges) >= 20 and len(tables.chunks(conn, "raw.sales", "Date", 4_000)) >= 20
    versions = {name: data_version(data_dir, name) for name in whole}
    chunked = build(resources, instance, full_rebuild=True)
    assert metadata(chunked, "features/sales_features")["mode"] == "full"
    for name, rows in whole.items():
        assert_frame_equal(rows, table(data_dir, name))
    # the digest a rebuild keeps as its chunks go in equals hashing the table it wrote, and the one-chunk digest
    with lake(data_dir, read_only=False) as conn:
        for name in whole:
            kept = digests.data_version(conn, name)
            digests.recompute_digest(conn, name)
            assert digests.data_version(conn, name) == kept == versions[name], name

    # the stores on either side of every seam, against the lags and 7/28-day means SQL computes from cleaned rows
    edges = sorted({store for first, last in store_ranges for store in (first, last)})
    with lake(data_dir) as conn:
        expected = conn.execute(f"""
            SELECT c.store, c.date,
                   {", ".join(f"(SELECT p.sales FROM cleaned.sales p WHERE p.store = c.store "
                              f"AND p.date = c.date - {k}) AS sales_lag_{k}" for k in LAGS)},
                   {", ".join(f"(SELECT avg(p.sales) FROM cleaned.sales p WHERE p.store = c.store AND p.date >= "
                              f"c.date - {w} AND p.date < c.date) AS sales_mean_{w}d" for w in WINDOWS)}
            FROM cleaned.sales c WHERE c.store IN (SELECT unnest(?)) ORDER BY c.store, c.date""", [edges]).pl()
    columns = [f"sales_lag_{k}" for k in LAGS] + [f"sales_mean_{w}d" for w in WINDOWS]
    got = whole["features.sales_features"].filter(pl.col("store").is_in(edges)).select("store", "date", *columns)
    assert_frame_equal(got, expected, check_dtypes=False)
    assert all(filled > len(edges) * 50 for filled in got.select(pl.col(columns).is_not_null().sum()).row(0))

    # a new store master changes every date: that update goes in chunks too, and equals a rebuild
    land(data_dir, stores=True, first=date(2014, 8, 29), days=1)
    assert load().success and load("sales_2014-08-29.csv").success
    update = build(resources, instance)
    cleaned, features = metadata(update, "cleaned/sales"), metadata(update, "features/sales_features")
    assert cleaned["mode"] == "full" and cleaned["chunks"] >= 20
    assert features["mode"] == "incremental" and features["chunks"] >= 20
    updated = table(data_dir, "features.sales_features")
    build(resources, instance, full_rebuild=True)
    assert_frame_equal(updated, table(data_dir, "features.sales_features"))


def test_a_new_store_master_recomputes_everything(data_dir, resources, instance, load):
    land(data_dir, days=3)
    assert load().success
    for day in (1, 2, 3):
        assert load(f"sales_2013-01-0{day}.csv").success
    build(resources, instance)
    land(data_dir, stores=True, days=1)
    assert load().success and load("sales_2013-01-04.csv").success
    result = build(resources, instance)
    assert metadata(result, "cleaned/sales")["mode"] == "full"
    assert metadata(result, "cleaned/sales")["rows_written"] == 1114 + 3 * 1115


def test_the_full_rebuild_job_recomputes_everything_with_checks(data_dir, resources, instance, load):
    from platform_assets.definitions import assets, checks, layers
    from platform_assets.automation.jobs import layer_jobs

    # the jobs as the code location defines them, bound to this test's warehouse
    defs = dg.Definitions(assets=assets, asset_checks=checks, jobs=layer_jobs(layers), resources=resources)
    land(data_dir, days=2)
    assert load().success and load("sales_2013-01-01.csv").success and load("sales_2013-01-02.csv").success
    result = defs.resolve_job_def("full_rebuild").execute_in_process(instance=instance)
    assert result.success
    modes = {e.asset_key.to_user_string(): e.materialization.metadata["mode"].value
             for e in result.get_asset_materialization_events()}
    assert modes == {"cleaned/sales": "full", "features/sales_features": "full"}
    assert {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()} == {
        "cleaned/sales", "features/sales_features"}
    incremental = defs.resolve_job_def("incremental_update").execute_in_process(instance=instance)
    assert {e.materialization.metadata["mode"].value for e in incremental.get_asset_materialization_events()} == {
        "incremental"}
