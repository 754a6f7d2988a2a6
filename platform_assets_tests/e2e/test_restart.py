"""`dagster dev` stopped and started again while files keep landing: nothing skipped, nothing loaded twice."""

import json
import time
from collections import Counter

import pytest

from platform_assets.sample_data.land import land
from platform_assets.warehouse.commits import LAKE
from platform_assets_tests.e2e.dagster_server import dagster_dev

pytestmark = pytest.mark.e2e


def test_a_restart_while_files_land_skips_nothing_and_loads_nothing_twice(tmp_path):
    data_dir = tmp_path / "data"
    with dagster_dev(tmp_path) as server:
        landed = land(data_dir, days=2)
        server.wait_until(lambda: server.latest_materialization("raw", "sales"), 300, "a first load")
        landed += land(data_dir, days=3)
        time.sleep(4)  # loads are queued or running when the server goes down
    landed += land(data_dir, days=2)  # upstream does not wait for us
    with dagster_dev(tmp_path) as server:
        landed += land(data_dir, days=2)
        names = {f.path.name for f in landed}
        server.wait_until(lambda: not any((data_dir / "landing").iterdir()) and server.idle(), 600,
                          "every landed file handled and all runs finished", every=3)
        runs = server.runs()
        cursor = json.loads(server.sensor_cursor("landing_sensor"))

    ledger = {name: (status, digest) for name, status, digest in
              server.query("SELECT file_name, status, content_hash FROM ops.landed_files")}
    rows = dict(server.query("SELECT _source_file, count(*) FROM raw.sales GROUP BY 1"))
    assert set(ledger) == names and {s for s, _ in ledger.values()} == {"loaded"}
    assert cursor["content"] == {name: digest for name, (_, digest) in ledger.items()}  # cursor and ledger agree
    assert rows == {f.path.name: f.rows for f in landed if f.path.name.startswith("sales_")}
    # Every sales file committed into raw.sales once: the lake's load commits, whatever became of their runs
    # (a run interrupted after its last step has committed its load, and ends FAILURE; a run cut short during
    # its checks is followed by a checks-only run, which loads nothing).
    loads = Counter(file for (file,) in server.query(
        f"SELECT commit_extra_info::JSON->>'file' FROM {LAKE}.snapshots() "
        "WHERE commit_message LIKE 'load % into raw.sales'"))
    assert set(loads) == {n for n in names if n.startswith("sales_")} and set(loads.values()) == {1}
    interrupted = [r for r in runs if r["status"] not in ("SUCCESS",)]
    rechecks = [r for r in runs if not r["assetSelection"]]
    print(f"\n{len(names)} files, {len(runs)} runs, {len(interrupted)} interrupted by the restart: "
          f"{[r['status'] for r in interrupted]}, {len(rechecks)} checks-only re-run(s)")
