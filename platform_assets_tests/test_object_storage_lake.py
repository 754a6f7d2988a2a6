"""The lake's Parquet files on object storage: a real S3 server (SeaweedFS) with one identity per role.

The writer's runs build every layer into ``s3://lake/``; the result equals a lake on the local
disk; a reader with the read-only identity reads it from another process, and the object store
itself refuses that identity's writes.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from platform_assets.resources import LandingZone, Warehouse
from platform_assets.sample_data.land import land
from platform_assets.warehouse.lake import LakeError
from platform_assets_tests.conftest import load_raw
from platform_assets_tests.fixtures.object_store import seaweedfs
from platform_assets_tests.test_assets_cleaned_features import build

DAYS = 3
LAYERS = ("raw.sales", "cleaned.sales", "features.sales_features")


@pytest.fixture
def object_store(tmp_path):
    with seaweedfs(tmp_path / "object_store", buckets=("lake",)) as store:
        yield store


def s3_lake(data_dir: Path, **kwargs) -> Warehouse:
    """The data directory's catalog (SQLite) with the lake's files in the bucket."""
    local = Warehouse.embedded(data_dir)
    return Warehouse(catalog=local.catalog, data_path="s3://lake/", spill_dir=local.spill_dir, **kwargs)


def build_all(data_dir: Path, warehouse: Warehouse) -> None:
    resources = {"landing": LandingZone(data_dir=str(data_dir)), "warehouse": warehouse}
    with dg.DagsterInstance.ephemeral() as instance:
        assert load_raw(instance, resources).success
        for day in sorted(p.name for p in (data_dir / "landing").glob("sales_*.csv")):
            assert load_raw(instance, resources, day).success
        assert build(resources, instance).success


def tables_of(warehouse: Warehouse) -> dict[str, pl.DataFrame]:
    with warehouse.get_connection() as conn:
        frames = {t: conn.sql(f"SELECT * FROM {t}").pl().drop("_updated_at", "_loaded_at", strict=False)
                  for t in LAYERS}
    return {t: frame.sort(frame.columns) for t, frame in frames.items()}


def test_every_layer_builds_into_the_bucket_and_equals_a_lake_on_local_disk(tmp_path, object_store, monkeypatch):
    on_s3, on_disk = tmp_path / "s3" / "data", tmp_path / "disk" / "data"
    landed = land(on_s3, days=DAYS)
    shutil.copytree(on_s3, on_disk)
    for name, value in object_store.env("lake-writer").items():
        monkeypatch.setenv(name, value)

    build_all(on_s3, s3_lake(on_s3))
    build_all(on_disk, Warehouse.embedded(on_disk))

    parquet = [k for k in object_store.keys("lake") if k.endswith(".parquet")]
    assert {k.split("/")[0] for k in parquet} >= {"raw", "cleaned", "features"}
    assert not list((on_s3 / "lake").rglob("*.parquet")), "the lake's files must not land on the local disk"
    expected = tables_of(Warehouse.embedded(on_disk, read_only=True))
    actual = tables_of(s3_lake(on_s3, read_only=True))
    for name in LAYERS:
        assert_frame_equal(actual[name], expected[name], check_exact=False, rel_tol=1e-12)
    assert actual["features.sales_features"].height == sum(f.rows for f in landed[1:]) > 1000 * DAYS


def test_a_reader_with_the_read_only_identity_reads_from_another_process_and_cannot_write(
        tmp_path, object_store, monkeypatch):
    data_dir = tmp_path / "data"
    _, day = land(data_dir, days=1)
    for name, value in object_store.env("lake-writer").items():
        monkeypatch.setenv(name, value)
    build_all(data_dir, s3_lake(data_dir))
    files_before = object_store.keys("lake")

    reader_env = {**os.environ, **object_store.env("lake-reader"), "PLATFORM_DATA_DIR": str(data_dir),
                  "PLATFORM_LAKE_DATA_PATH": "s3://lake/"}
    read = subprocess.run([str(Path(sys.executable).with_name("platform-assets")), "sql",
                           "SELECT count(*) AS n FROM features.sales_features"],
                          env=reader_env, capture_output=True, text=True, timeout=300)
    assert read.returncode == 0, read.stderr
    assert f"│ {day.rows} │" in read.stdout

    # the same identity attached for writing: the object store refuses the Parquet file (DuckLake keeps
    # writes of a few rows in the catalog, which is why readers also attach read-only)
    for name, value in object_store.env("lake-reader").items():
        monkeypatch.setenv(name, value)
    with pytest.raises(duckdb.Error, match=r"HTTP code 403"):
        with s3_lake(data_dir).get_connection() as conn:
            conn.execute("INSERT INTO raw.sales BY NAME SELECT * FROM raw.sales")
    assert object_store.keys("lake") == files_before
    with s3_lake(data_dir, read_only=True).get_connection() as conn:
        assert conn.sql("SELECT count(*) FROM raw.sales").fetchall() == [(day.rows,)]


def test_a_lake_on_s3_without_an_identity_is_refused_with_what_to_set(tmp_path, object_store, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LakeError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        with s3_lake(tmp_path / "data").get_connection():
            pass
