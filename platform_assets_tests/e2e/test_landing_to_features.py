"""Against a running `dagster dev`: files landed with the CLI become fresh features, hands off."""

import os
import subprocess
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import duckdb
import psycopg2
import pytest

from platform_assets_tests.e2e.dagster_server import BIN, REPO, dagster_dev, fresh_postgres_database

pytestmark = pytest.mark.e2e

THREE_DAYS = 1114 + 2 * 1115  # one store has no row on 2013-01-01
SIX_DAYS = THREE_DAYS + 3 * 1115


def land(data_dir, *args):
    subprocess.run([str(BIN / "platform-assets"), "land", "--data-dir", str(data_dir), *args],
                   check=True, capture_output=True, text=True)


def features_rows(server):
    latest = server.latest_materialization("features", "sales_features")
    return latest and latest.get("dagster/row_count")


def instance_profile(name: str, stack: ExitStack) -> dict:
    """dagster_dev arguments for the local profile (SQLite) or the production one (PostgreSQL)."""
    if name == "local":
        return {}
    server_url = os.environ.get("PLATFORM_TEST_POSTGRES_URL")
    if not server_url:
        pytest.skip("PLATFORM_TEST_POSTGRES_URL is not set: run `make postgres` first (.ci/run does)")
    url = urlsplit(stack.enter_context(fresh_postgres_database(server_url)))
    return {"instance_yaml": REPO / "deploy" / "dagster.postgres.yaml", "database_url": url.geturl(),
            "env": {"DAGSTER_PG_HOST": url.hostname, "DAGSTER_PG_PORT": str(url.port), "DAGSTER_PG_DB": url.path[1:],
                    "DAGSTER_PG_USER": url.username, "DAGSTER_PG_PASSWORD": url.password}}


@pytest.mark.parametrize("profile", ["local", "postgres"])
def test_landed_files_reach_features_and_concurrent_runs_queue(tmp_path, profile):
    with ExitStack() as stack:
        arguments = instance_profile(profile, stack)
        database_url = arguments.pop("database_url", None)
        server = stack.enter_context(dagster_dev(tmp_path, **arguments))
        run_scenario(server)
        if database_url:  # Dagster's state really is in PostgreSQL
            with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM runs")
                assert cursor.fetchone()[0] == len(server.runs())
    check_results(server)


def run_scenario(server):
    """Three days landed, then three more while someone materializes by hand."""
    started = time.monotonic()
    land(server.data_dir, "--days", "3")
    server.wait_until(lambda: features_rows(server) == THREE_DAYS, 300, "features for 3 landed days")
    latency = time.monotonic() - started
    server.wait_until(server.idle, 120, "all runs to finish")
    print(f"\nlanding -> fresh features: {latency:.1f}s for store master + 3 daily files")

    # A manual materialization from the UI while the sensor loads three more files.
    land(server.data_dir, "--days", "3")
    manual = server.launch(("cleaned", "sales"), ("features", "sales_features"))
    server.wait_until(lambda: features_rows(server) == SIX_DAYS, 300, "features for 6 landed days")
    server.wait_until(server.idle, 120, "all runs to finish")

    runs = server.runs()
    assert manual in {r["runId"] for r in runs}
    assert [r for r in runs if r["status"] != "SUCCESS"] == []
    sensor_runs = [r for r in runs if {"key": "dagster/sensor_name", "value": "landing_sensor"} in r["tags"]]
    assert len(sensor_runs) == 7  # store master + 6 daily files, each loaded once
    downstream = [r for r in runs if ["cleaned", "sales"] in [a["path"] for a in r["assetSelection"] or []]]
    assert len(downstream) < 6  # coalesced: not one downstream rebuild per file
    print(f"runs: {len(sensor_runs)} loads, {len(downstream)} downstream (incl. 1 manual), all succeeded")


def check_results(server):
    log = server.log.read_text()
    assert "Could not set lock" not in log and "Conflicting lock" not in log  # DuckDB's lock errors
    assert "blocked by global concurrency limits" in log  # concurrent runs queued on the duckdb pool
    with duckdb.connect(str(server.data_dir / "warehouse.duckdb"), read_only=True) as conn:
        counts = {t: conn.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                  for t in ("raw.stores", "raw.sales", "cleaned.sales", "features.sales_features")}
    assert counts == {"raw.stores": 1115, "raw.sales": SIX_DAYS, "cleaned.sales": SIX_DAYS,
                      "features.sales_features": SIX_DAYS}
    assert sorted(p.name for p in (server.data_dir / "landing").iterdir()) == []
    assert len(list((server.data_dir / "archive").iterdir())) == 7
