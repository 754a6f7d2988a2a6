"""The object store stops for 20 s while files land and loads run.

A real `dagster dev` with the lake's files in SeaweedFS (`s3://lake/`) and its catalog in SQLite;
the landing zone in a local folder (files land during the outage), or in the store's buckets too
(files land just before it stops, and the sensor cannot even list them meanwhile). The store is
killed outright and comes back on the same address with its data. Proven afterwards: every
file's rows are in raw once, each with one ledger row and one archived copy, landing is empty,
nothing is quarantined, and no snapshot of the lake ever showed part of a file.
"""

import time

import pytest

from platform_assets.resources import LandingZone
from platform_assets.sample_data.land import land
from platform_assets.settings import ARCHIVE_URL_ENV, LANDING_URL_ENV, QUARANTINE_URL_ENV, Settings
from platform_assets_tests.e2e.dagster_server import dagster_dev
from platform_assets_tests.fixtures.object_store import LANDING_ZONE, seaweedfs

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 20


@pytest.mark.parametrize("landing_in", ["folder", "bucket"])
def test_the_object_store_stopped_while_files_land_then_back(tmp_path, monkeypatch, landing_in):
    with seaweedfs(tmp_path / "object_store", ("lake", *LANDING_ZONE)) as store:
        env = {**store.env("lake-writer"), "PLATFORM_LAKE_DATA_PATH": "s3://lake/",
               "PLATFORM_LANDING_RETRY_SECONDS": "5"}
        if landing_in == "bucket":
            env.update({LANDING_URL_ENV: "s3://landing/", ARCHIVE_URL_ENV: "s3://archive/",
                        QUARANTINE_URL_ENV: "s3://quarantine/"})
        for name, value in env.items():
            monkeypatch.setenv(name, value)  # this process reads the lake (and lands files) as well
        with dagster_dev(tmp_path / "control", env=env) as server:
            zone = LandingZone.from_settings(Settings.from_env(data_dir=server.data_dir))  # as upstream sees it
            before = land(server.data_dir, days=2, zone=zone)
            server.wait_until(lambda: server.latest_materialization("raw", "sales") and server.idle(), 300,
                              "the first loads")

            if landing_in == "bucket":  # they land just before the store stops: nobody can put into it after
                during = land(server.data_dir, days=3, zone=zone)
                store.stop()
            else:
                store.stop()
                during = land(server.data_dir, days=3, zone=zone)
            deadline = time.monotonic() + OUTAGE_SECONDS  # the outage lasts 20 s (the scenario)
            while time.monotonic() < deadline:
                time.sleep(1)
            failed_meanwhile = [r for r in server.runs() if r["status"] == "FAILURE"]
            store.start()
            store.wait_until_ready("lake")

            sales = [f for f in [*before, *during] if f.path.name.startswith("sales_")]

            def listed(place: str) -> list[str]:
                """What the landing zone's folder or bucket holds (relative names), seen from outside."""
                if landing_in == "bucket":
                    return store.keys(place)
                folder = server.data_dir / place
                return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []

            def all_loaded():
                return listed("landing") == [] and server.idle() and len(
                    server.query("SELECT DISTINCT _source_file FROM raw.sales")) == len(sales)
            server.wait_until(all_loaded, 600, lambda: f"every file loaded; landing: {listed('landing')}",
                              every=2)
            runs = server.runs()
            print(f"\n{len(failed_meanwhile)} run(s) failed during the outage; {len(runs)} runs in all")

            rows = {f.path.name: f.rows for f in sales}
            assert dict(server.query("SELECT _source_file, count(*) FROM raw.sales GROUP BY 1")) == rows
            ledger = server.query("SELECT file_name, status, count(*) FROM ops.landed_files GROUP BY ALL")
            assert sorted(ledger) == sorted((f.path.name, "loaded", 1) for f in [*before, *during])
            archived = [name.split("/")[0] for name in listed("archive") if "/" in name]
            assert sorted(archived) == sorted(f.path.name for f in [*before, *during])  # one copy each
            assert listed("quarantine") == []
            # no version of the lake ever showed part of a file: each file is in it whole or not at all
            versions = [v for (v,) in server.query("SELECT snapshot_id FROM ducklake_snapshots('lake')")]
            for version in versions:
                try:
                    seen = server.query(f"SELECT _source_file, count(*) FROM raw.sales AT (VERSION => {version}) "
                                        "GROUP BY 1")
                except Exception as error:  # noqa: BLE001 - raw.sales did not exist yet at that version
                    assert "does not exist" in str(error) or "not exist" in str(error), error
                    continue
                assert all(rows[name] == count for name, count in seen), (version, seen)
            # the sensor went on ticking through the outage, and the failed loads were tried again
            assert "FAILURE" not in server.sensor_tick_statuses("landing_sensor")[:50]
