"""The production profile's lake: catalog in PostgreSQL, many writers, read-only users.

Needs a PostgreSQL server (PLATFORM_TEST_POSTGRES_URL; `make postgres` starts Debian's on loopback,
.ci/run does so); each test gets a fresh database as its lake catalog.
"""

import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import psycopg2
import pytest

from platform_assets.resources import LandingZone, Warehouse
from platform_assets.sample_data.land import land
from platform_assets.settings import Settings
from platform_assets.warehouse import commits
from platform_assets_tests.conftest import load_raw
from platform_assets_tests.e2e.dagster_server import fresh_postgres_database
from platform_assets_tests.fixtures.parallel_load import CONFLICT

PARALLEL_LOADS = 8
TABLES = ("raw.stores", "raw.sales", "ops.landed_files")


@pytest.fixture
def postgres_lake(data_dir, monkeypatch):
    """(catalog, database URL) of a fresh PostgreSQL lake catalog; the password only in PGPASSWORD."""
    server_url = os.environ.get("PLATFORM_TEST_POSTGRES_URL")
    if not server_url:
        pytest.skip("PLATFORM_TEST_POSTGRES_URL is not set: run `make postgres` first (.ci/run does)")
    with ExitStack() as stack:
        url = stack.enter_context(fresh_postgres_database(server_url))
        parts = urlsplit(url)
        monkeypatch.setenv("PGPASSWORD", parts.password)
        catalog = f"postgres:dbname={parts.path[1:]} host={parts.hostname} port={parts.port} user={parts.username}"
        monkeypatch.setenv("PLATFORM_LAKE_CATALOG", catalog)
        monkeypatch.setenv("PLATFORM_LAKE_DATA_PATH", f"{data_dir / 'shared_lake'}/")
        monkeypatch.setenv("PLATFORM_DATA_DIR", str(data_dir))
        yield catalog, url


def warehouse(**kwargs) -> Warehouse:
    """The lake the fixture configured in the environment, as the platform reads it."""
    return Warehouse.from_settings(Settings.from_env(), **kwargs)


def database_suffix(url: str) -> str:
    return urlsplit(url).path.rsplit("_", 1)[-1]


def most_at_once(windows: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) windows that share one moment."""
    return max(sum(start <= moment <= end for start, end in windows) for moment, _ in windows)


def test_loads_of_different_files_run_in_parallel_and_all_land_once(data_dir, postgres_lake):
    store, *days = land(data_dir, days=PARALLEL_LOADS)
    with dg.DagsterInstance.ephemeral() as instance:
        resources = {"landing": LandingZone(data_dir=str(data_dir)), "warehouse": warehouse()}
        assert load_raw(instance, resources).success
    signal = data_dir / "start"
    loaders = [subprocess.Popen([sys.executable, "-m", "platform_assets_tests.fixtures.parallel_load",
                                 day.path.name, str(signal)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for day in days]
    ready = [signal.with_name(f"{signal.name}.ready.{day.path.name}") for day in days]
    deadline = time.monotonic() + 600
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:  # every loader has imported everything
        time.sleep(0.1)
    signal.touch()
    reports = []
    for loader in loaders:
        out, err = loader.communicate(timeout=600)
        assert loader.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))

    assert all(r["success"] for r in reports), reports
    at_once = most_at_once([(r["started"], r["ended"]) for r in reports])
    conflicts = [c for r in reports for c in r["conflicts"]]
    print(f"\n{PARALLEL_LOADS} loads, at most {at_once} at the same time, {len(conflicts)} conflict(s) retried")
    assert at_once >= 4
    with warehouse(read_only=True).get_connection() as conn:
        rows = dict(conn.sql("SELECT _source_file, count(*) FROM raw.sales GROUP BY 1").fetchall())
        distinct = conn.sql("SELECT count(*) = count(DISTINCT (Store, Date)) FROM raw.sales").fetchall()[0][0]
        ledger = conn.sql("SELECT status, verified_at IS NOT NULL, count(*) FROM ops.landed_files "
                          "WHERE kind = 'sales' GROUP BY ALL").fetchall()
    assert rows == {day.path.name: day.rows for day in days} and distinct  # each file once, nothing twice
    assert ledger == [("loaded", True, PARALLEL_LOADS)]
    assert not list((data_dir / "landing").iterdir())


def test_a_commit_that_conflicts_with_another_writer_is_retried_and_logged(data_dir, postgres_lake):
    with warehouse().get_connection() as setup:
        setup.execute("CREATE TABLE raw.counter AS SELECT 1 AS day, 0 AS n UNION ALL SELECT 2, 0")
    attempts = []

    @dg.op
    def rewrite_day_one(context: dg.OpExecutionContext, lake: Warehouse) -> None:
        """Rewrites day 1 while another process rewrites day 2 of the same table and commits first."""
        with lake.get_connection() as conn:
            def work():
                attempts.append(1)
                conn.execute("DELETE FROM raw.counter WHERE day = 1")
                conn.execute("INSERT INTO raw.counter VALUES (1, 1)")
                if len(attempts) == 1:
                    with warehouse().get_connection() as rival:
                        rival.execute("BEGIN")
                        rival.execute("DELETE FROM raw.counter WHERE day = 2")
                        rival.execute("INSERT INTO raw.counter VALUES (2, 1)")
                        rival.execute("COMMIT")

            commits.write(conn, work, log=context.log)

    @dg.job
    def conflicting_write():
        rewrite_day_one()

    with dg.DagsterInstance.ephemeral() as instance:
        run = conflicting_write.execute_in_process(instance=instance, resources={"lake": warehouse()})
        assert run.success
        logged = [r.user_message for r in instance.all_logs(run.run_id) if CONFLICT in r.user_message]
    assert len(attempts) == 2 and len(logged) == 1  # retried once, and the run's log says so
    with warehouse(read_only=True).get_connection() as conn:
        assert conn.sql("SELECT * FROM raw.counter ORDER BY day").fetchall() == [(1, 1), (2, 1)]  # both changes


def test_a_read_only_user_reads_every_table_and_changes_none(data_dir, postgres_lake):
    catalog, url = postgres_lake
    land(data_dir, days=1)
    with dg.DagsterInstance.ephemeral() as instance:
        resources = {"landing": LandingZone(data_dir=str(data_dir)), "warehouse": warehouse()}
        assert load_raw(instance, resources).success and load_raw(instance, resources, "sales_2013-01-01.csv").success
    database, role = urlsplit(url).path[1:], f"reader_{database_suffix(url)}"
    with psycopg2.connect(url) as admin, admin.cursor() as cursor:  # a role that may only read the catalog
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'reader'")
        cursor.execute(f"GRANT {role} TO CURRENT_USER")  # so the test may drop it again
        cursor.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        reader_catalog = catalog.replace(f"user={urlsplit(url).username}", f"user={role} password=reader")
        reader = Warehouse(catalog=reader_catalog, data_path=os.environ["PLATFORM_LAKE_DATA_PATH"], read_only=True)
        with reader.get_connection() as conn:
            counts = {t: conn.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}
            assert counts == {"raw.stores": 1115, "raw.sales": 1114, "ops.landed_files": 2}
            for change in ("DELETE FROM raw.sales", "INSERT INTO ops.landed_files SELECT * FROM ops.landed_files",
                           "DROP TABLE raw.stores", "CREATE TABLE raw.mine (a INT)"):
                with pytest.raises(duckdb.Error, match="read-only"):
                    conn.execute(change)
        # attached for writing, the role's missing grants still refuse the commit
        writer = Warehouse(catalog=reader_catalog, data_path=os.environ["PLATFORM_LAKE_DATA_PATH"])
        with pytest.raises((duckdb.Error, dg.Failure), match="permission denied"):
            with writer.get_connection() as conn:
                conn.execute("DELETE FROM raw.sales")
        with warehouse(read_only=True).get_connection() as conn:
            assert {t: conn.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES} == counts
    finally:
        with psycopg2.connect(url) as admin, admin.cursor() as cursor:
            cursor.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
            cursor.execute(f"DROP OWNED BY {role}")
        with psycopg2.connect(url) as admin, admin.cursor() as cursor:
            cursor.execute(f"DROP ROLE {role}")
