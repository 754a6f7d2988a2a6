"""Against a running `dagster dev`: files landed with the CLI become fresh features, hands off."""

import subprocess
import sys
import time

import duckdb
import pytest

from platform_assets_tests.e2e.dagster_server import BIN, dagster_dev

pytestmark = pytest.mark.e2e

THREE_DAYS = 1114 + 2 * 1115  # one store has no row on 2013-01-01
SIX_DAYS = THREE_DAYS + 3 * 1115


def land(data_dir, *args):
    subprocess.run([str(BIN / "platform-assets"), "land", "--data-dir", str(data_dir), *args],
                   check=True, capture_output=True, text=True)


def features_rows(server):
    latest = server.latest_materialization("features", "sales_features")
    return latest and latest.get("dagster/row_count")


def test_landed_files_reach_features_and_concurrent_runs_queue(tmp_path):
    with dagster_dev(tmp_path) as server:
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
