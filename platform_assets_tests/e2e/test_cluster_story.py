"""The whole production shape on hosts: files landing in a bucket, steps on worker hosts, the lake's
files in a bucket, its catalog and Dagster's storage in PostgreSQL, and a reader on a host of its own.

Hosts are network namespaces on a bridge (fixtures/hosts.py). On the control host's address on
that network: Redis (the broker), SeaweedFS (the S3 server, one identity per role) and a relay to
the machine's PostgreSQL (it listens on loopback only). `dagster dev` is the control host; two
worker hosts run every step; a third host only reads. Upstream drops the files into the landing
bucket with an identity that may write only there; nothing of the data is on a local disk.
"""

import os
import sys
from contextlib import ExitStack

import psycopg2
import pytest

from platform_assets.resources import LandingZone, Warehouse
from platform_assets.sample_data.land import land
from platform_assets.settings import LANDING_URL_ENV
from platform_assets.warehouse import digests
from platform_assets_tests.e2e.dagster_server import REPO, dagster_dev
from platform_assets_tests.e2e.test_cluster import WORKERS, step_hosts
from platform_assets_tests.fixtures.cluster import INSTANCE, production_services, start_workers
from platform_assets_tests.test_object_storage_lake import build_all

pytestmark = pytest.mark.e2e

DAYS = 3
FEATURES = "features.sales_features"
# what a reader host runs: it reads, then tries to write three ways; prints one line per attempt
READER_SCRIPT = """
import sys, duckdb
from platform_assets.resources import Warehouse
from platform_assets.settings import Settings
settings = Settings.from_env()
with Warehouse(catalog=settings.lake_catalog, data_path=settings.lake_data_path, read_only=True).get_connection() as c:
    print("read", c.sql("SELECT count(*) FROM features.sales_features").fetchone()[0])
    try:
        c.execute("DELETE FROM raw.sales")
        print("delete: ALLOWED")
    except duckdb.Error as error:
        print("delete: refused:", str(error).splitlines()[0])
for name, change in (("insert", "INSERT INTO raw.sales BY NAME SELECT * FROM raw.sales"),
                     ("delete", "DELETE FROM raw.sales")):
    try:
        with Warehouse(catalog=settings.lake_catalog, data_path=settings.lake_data_path).get_connection() as c:
            c.execute(change)
        print(f"writable {name}: ALLOWED")
    except Exception as error:
        print(f"writable {name}: refused:", str(error).replace(chr(10), " ")[:300])
"""


def read_only_role(admin_url: str, database: str) -> tuple[str, str]:
    """A PostgreSQL role that may only read the lake's catalog; returns (name, password)."""
    role, password = f"reader_{database[-12:]}", "reader-password"
    with psycopg2.connect(admin_url.rsplit("/", 1)[0] + "/" + database) as admin, admin.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        cursor.execute(f"GRANT {role} TO CURRENT_USER")
        cursor.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    return role, password


def drop_role(admin_url: str, database: str, role: str) -> None:
    with psycopg2.connect(admin_url.rsplit("/", 1)[0] + "/" + database) as admin, admin.cursor() as cursor:
        cursor.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
        cursor.execute(f"DROP OWNED BY {role}")
    with psycopg2.connect(admin_url) as admin, admin.cursor() as cursor:
        cursor.execute(f"DROP ROLE {role}")


def test_the_whole_story_on_hosts(tmp_path, monkeypatch):
    server_url = os.environ.get("PLATFORM_TEST_POSTGRES_URL")
    if not server_url:
        pytest.skip("PLATFORM_TEST_POSTGRES_URL is not set: run `make postgres` first (.ci/run does)")
    with ExitStack() as stack:
        services = stack.enter_context(production_services(tmp_path, server_url, object_store=True))
        net, store, env, lake_db = services.net, services.store, services.env, services.lake_database
        server = stack.enter_context(dagster_dev(tmp_path / "control", env=env, instance_yaml=INSTANCE))
        start_workers(net, WORKERS, server.env, tmp_path)

        # upstream drops the files into the landing bucket with its own identity (it may write there only)
        landed = land(tmp_path / "upstream", days=DAYS)
        upstream = LandingZone(landing_url=env[LANDING_URL_ENV])
        with monkeypatch.context() as identity:
            for name, value in store.env("upstream").items():
                identity.setenv(name, value)
            for file in landed:
                upstream.drop(file.path)
        expected_rows = sum(f.rows for f in landed if f.path.name.startswith("sales_"))

        def features_built():
            latest = server.latest_materialization("features", "sales_features")
            return latest and latest.get("dagster/row_count") == expected_rows and server.idle()
        server.wait_until(features_built, 600, "every landed day through every layer, on the workers")

        runs = server.runs()
        assert [r for r in runs if r["status"] != "SUCCESS"] == []
        executed = {r["runId"]: step_hosts(server, r["runId"]) for r in runs}
        assert all(executed.values()), executed  # every run's steps went to a worker host
        assert {w.split("@")[1] for steps in executed.values() for w in steps.values()} <= set(WORKERS)
        assert list(server.data_dir.rglob("*.parquet")) == []  # the lake's files are in the bucket
        assert any(key.endswith(".parquet") for key in store.keys("lake"))
        # every file was taken from the landing bucket and archived once in the archive bucket, nothing locally
        assert store.keys("landing") == [] and store.keys("quarantine") == []
        assert sorted(key.split("/")[0] for key in store.keys("archive")) == sorted(f.path.name for f in landed)
        assert not (server.data_dir / "landing").exists() and not (server.data_dir / "archive").exists()

        # the same files built by the embedded profile (local folders, SQLite catalog, one process)
        embedded_dir = tmp_path / "embedded" / "data"
        land(embedded_dir, days=DAYS)
        build_all(embedded_dir, Warehouse.embedded(embedded_dir))
        for name, value in {**store.env("lake-reader"), "PGPASSWORD": lake_db.password}.items():
            monkeypatch.setenv(name, value)
        cluster_lake = Warehouse(catalog=env["PLATFORM_LAKE_CATALOG"], data_path="s3://lake/", read_only=True)
        with cluster_lake.get_connection() as on_cluster, Warehouse.embedded(embedded_dir, read_only=True) \
                .get_connection() as embedded:
            for table in ("cleaned.sales", FEATURES):  # the layers' data versions
                assert digests.data_version(on_cluster, table) == digests.data_version(embedded, table), table
            # raw's rows, but for when each file landed
            columns = [c for c in digests.digest_columns(embedded, "raw.sales") if c != "_landed_at"]
            assert digests.row_hash_sum(on_cluster, "raw.sales", columns) == \
                digests.row_hash_sum(embedded, "raw.sales", columns)

        # a reader on a host of its own: the read-only S3 identity and PostgreSQL role
        role, password = read_only_role(server_url, lake_db.path[1:])
        stack.callback(drop_role, server_url, lake_db.path[1:], role)
        reader_env = {**os.environ, **store.env("lake-reader"), "PLATFORM_DATA_DIR": str(tmp_path / "reader"),
                      "PLATFORM_LAKE_CATALOG": f"{services.catalog} user={role}", "PGPASSWORD": password,
                      "PLATFORM_LAKE_DATA_PATH": "s3://lake/"}
        files_before = store.keys("lake")
        reader = net.host("reader")
        log = tmp_path / "reader.log"
        process = reader.start([sys.executable, "-c", READER_SCRIPT], log, env=reader_env, cwd=REPO)
        assert process.wait(timeout=300) == 0, log.read_text()
        said = log.read_text()
        assert f"read {expected_rows}" in said, said
        assert "ALLOWED" not in said and said.count("refused") == 3, said
        assert "read-only" in said.split("delete: refused:")[1].splitlines()[0], said
        assert store.keys("lake") == files_before  # the bucket is as it was
        with cluster_lake.get_connection() as conn:
            assert conn.sql("SELECT count(*) FROM raw.sales").fetchone()[0] == expected_rows
        print(f"\nreader host said:\n{said}")
