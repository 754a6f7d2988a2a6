"""Against a running `dagster dev`: files landed with the CLI become fresh features, hands off,
while a reader holds the lake open the whole time."""

import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

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


def instance_profile(name: str, stack: ExitStack, tmp_path: Path, monkeypatch) -> dict:
    """dagster_dev arguments for the local profile (SQLite, embedded lake) or the production one
    (Dagster's storage and the lake catalog in PostgreSQL, each its own database; the password in PGPASSWORD)."""
    if name == "local":
        return {}
    server_url = os.environ.get("PLATFORM_TEST_POSTGRES_URL")
    if not server_url:
        pytest.skip("PLATFORM_TEST_POSTGRES_URL is not set: run `make postgres` first (.ci/run does)")
    url = urlsplit(stack.enter_context(fresh_postgres_database(server_url)))
    lake = urlsplit(stack.enter_context(fresh_postgres_database(server_url)))
    monkeypatch.setenv("PGPASSWORD", lake.password)  # this process reads the lake too
    return {"instance_yaml": REPO / "deploy" / "dagster.postgres.yaml", "database_url": url.geturl(),
            "env": {"DAGSTER_PG_HOST": url.hostname, "DAGSTER_PG_PORT": str(url.port), "DAGSTER_PG_DB": url.path[1:],
                    "DAGSTER_PG_USER": url.username, "DAGSTER_PG_PASSWORD": url.password,
                    "PLATFORM_LAKE_CATALOG": f"postgres:dbname={lake.path[1:]} host={lake.hostname} "
                                             f"port={lake.port} user={lake.username}",
                    "PLATFORM_LAKE_DATA_PATH": f"{tmp_path / 'shared' / 'lake'}/", "PGPASSWORD": lake.password}}


@contextmanager
def reader_holding_the_lake(server, observations: Path):
    """A separate process that attaches the lake read-only before anything lands and keeps it to the end."""
    with server.warehouse().get_connection():
        pass  # the lake exists (as after a first run), so the reader can attach it now
    reader = subprocess.Popen([sys.executable, "-m", "platform_assets_tests.e2e.lake_reader", str(observations)],
                              env={**os.environ, **server.env}, stderr=subprocess.PIPE, text=True)
    try:
        server.wait_until(observations.exists, 60, "the reader to attach the lake")
        yield reader
    finally:
        observations.with_suffix(".stop").touch()
        reader.wait(timeout=60)


@pytest.mark.parametrize("profile", ["local", "postgres"])
def test_landed_files_reach_features_and_concurrent_runs_queue(tmp_path, profile, monkeypatch):
    observations = tmp_path / "reader.jsonl"
    with ExitStack() as databases:
        arguments = instance_profile(profile, databases, tmp_path, monkeypatch)
        database_url = arguments.pop("database_url", None)
        with dagster_dev(tmp_path, **arguments) as server, reader_holding_the_lake(server, observations) as reader:
            run_scenario(server)
            assert reader.poll() is None, reader.stderr.read()  # it held the lake the whole time
            if database_url:  # Dagster's state really is in PostgreSQL
                with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM runs")
                    assert cursor.fetchone()[0] == len(server.runs())
        assert reader.returncode == 0
        check_results(server, profile)  # while the lake's catalog database still exists
    check_what_the_reader_saw(observations)


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


def check_results(server, profile):
    log = server.log.read_text()
    if profile == "local":  # the embedded lake takes one writer at a time: concurrent runs queue on the pool
        assert "blocked by global concurrency limits" in log
    counts = {t: server.query(f"SELECT count(*) FROM {t}")[0][0]
              for t in ("raw.stores", "raw.sales", "cleaned.sales", "features.sales_features")}
    assert counts == {"raw.stores": 1115, "raw.sales": SIX_DAYS, "cleaned.sales": SIX_DAYS,
                      "features.sales_features": SIX_DAYS}
    assert sorted(p.name for p in (server.data_dir / "landing").iterdir()) == []
    assert len(list((server.data_dir / "archive").iterdir())) == 7


def check_what_the_reader_saw(observations: Path):
    """Counts never went backwards, and every file the reader saw in raw was whole."""
    seen = [json.loads(line) for line in observations.read_text().splitlines()]
    day_rows = {f"sales_2013-01-0{d}.csv": 1114 if d == 1 else 1115 for d in range(1, 7)}
    assert len(seen) > 20 and seen[-1]["files"] == day_rows
    for earlier, later in zip(seen, seen[1:]):
        assert sum(later["files"].values()) >= sum(earlier["files"].values())
        assert all(later[t] >= earlier[t] for t in ("cleaned.sales", "features.sales_features"))
    assert all(files == {name: day_rows[name] for name in files} for files in (s["files"] for s in seen))
    print(f"reader: {len(seen)} reads over {seen[-1]['time'] - seen[0]['time']:.0f}s, "
          f"{len({json.dumps(s['files'], sort_keys=True) for s in seen})} distinct raw states, all whole")
