"""The production profile's PostgreSQL (Dagster's storage and the lake's catalog) restarted between
two runs: the daemon, the sensor and the runs carry on, and nothing is lost or loaded twice."""

import subprocess
import time
from contextlib import ExitStack

import psycopg2
import pytest

from platform_assets.sample_data.land import land
from platform_assets_tests.e2e.dagster_server import dagster_dev
from platform_assets_tests.e2e.test_landing_to_features import instance_profile

pytestmark = pytest.mark.e2e


def restart_postgres(url: str) -> None:
    """Restart the server (every connection dropped), as an upgrade or a failover would; wait until it answers."""
    version, cluster = subprocess.run(["pg_lsclusters", "--no-header"], check=True, capture_output=True,
                                      text=True).stdout.split()[:2]
    subprocess.run(["pg_ctlcluster", version, cluster, "restart"], check=True, capture_output=True,
                   stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            psycopg2.connect(url).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_postgres_restarted_between_two_runs(tmp_path, monkeypatch):
    with ExitStack() as databases:
        arguments = instance_profile("postgres", databases, tmp_path, monkeypatch)
        database_url = arguments.pop("database_url")
        with dagster_dev(tmp_path, **arguments) as server:
            before = land(server.data_dir, days=2)
            server.wait_until(lambda: server.latest_materialization("features", "sales_features") and server.idle(),
                              300, "the first files through every layer")
            runs_before = len(server.runs())
            version_before = server.query("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')")[0][0]

            restart_postgres(database_url)
            # The webserver keeps one connection open (dagster-postgres); the first request after the
            # restart finds it dead, fails, and the pool replaces it: the webserver recovers by itself.
            failed = []

            def webserver_answers():
                try:
                    return server.runs()
                except OSError as error:  # an HTTP 500 while its connection is replaced
                    failed.append(error)
                    return None
            server.wait_until(webserver_answers, 60, "the webserver after the restart", every=0.5)
            assert len(failed) <= 3, failed
            print(f"\nrequests the webserver failed after the restart: {len(failed)}")
            after = land(server.data_dir, days=2)  # the sensor's next ticks, the runs: all on new connections
            sales = [f for f in [*before, *after] if f.path.name.startswith("sales_")]

            def all_loaded():
                loaded = server.query("SELECT count(DISTINCT _source_file) FROM raw.sales")[0][0]
                return loaded == len(sales) and server.idle()
            server.wait_until(all_loaded, 300, "the files landed after the restart")
            runs = server.runs()
            assert len(runs) > runs_before
            assert [r for r in runs if r["status"] != "SUCCESS"] == []
            rows = dict(server.query("SELECT _source_file, count(*) FROM raw.sales GROUP BY 1"))
            assert rows == {f.path.name: f.rows for f in sales}
            ledger = server.query("SELECT file_name, count(*) FROM ops.landed_files GROUP BY 1")
            assert sorted(ledger) == sorted((f.path.name, 1) for f in [*before, *after])
            assert all(len(list((server.data_dir / "archive" / f.path.name).iterdir())) == 1 for f in sales)
            # the lake's history is intact across the restart: the version before it reads as it was
            as_before = server.query(f"SELECT count(*) FROM raw.sales AT (VERSION => {version_before})")
            assert as_before == [(sum(f.rows for f in before if f.path.name.startswith("sales_")),)]
