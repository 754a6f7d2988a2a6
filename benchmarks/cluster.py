"""Scale-out: the same backfill of daily files with one worker host and with two, in one run.

Each configuration is a fresh cluster of the production shape on this machine: worker hosts in
network namespaces on a bridge (`platform_assets_tests/fixtures/hosts.py`), Redis as the Celery
broker, `dagster dev` on the control host with Dagster's storage and the lake's catalog in
PostgreSQL (so up to four loads commit side by side), the lake's files on the shared disk. It
lands the store master and a first day, waits for them, then lands N daily files at once and times them from
landing to the last feature row, with every step on the workers. Prints both times, the speed-up
(one worker's time / two workers'), and where the work ran.

    PLATFORM_TEST_POSTGRES_URL=$(deploy/postgres.sh) .venv/bin/python benchmarks/cluster.py [--files 24]

Needs root (network namespaces), Debian's redis-server, and the PostgreSQL of deploy/postgres.sh.
"""

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from platform_assets.sample_data.land import land  # noqa: E402
from platform_assets.settings import CELERY_BROKER_ENV  # noqa: E402
from platform_assets_tests.e2e.dagster_server import BIN, REPO, dagster_dev, fresh_postgres_database  # noqa: E402
from platform_assets_tests.e2e.test_cluster import step_hosts  # noqa: E402
from platform_assets_tests.fixtures.hosts import forward, network, redis  # noqa: E402

def backfill(folder: Path, workers: int, files: int, n_stores: int, server_url: str) -> dict:
    """Seconds from landing ``files`` daily files to their features, with ``workers`` worker hosts."""
    with ExitStack() as stack:
        net = stack.enter_context(network())
        broker = stack.enter_context(redis([net.gateway], folder / "redis"))
        postgres = urlsplit(server_url)
        relay = stack.enter_context(forward(net.gateway, (postgres.hostname, postgres.port)))
        dagster_db = urlsplit(stack.enter_context(fresh_postgres_database(server_url)))
        lake_db = urlsplit(stack.enter_context(fresh_postgres_database(server_url)))
        env = {"DAGSTER_PG_HOST": net.gateway, "DAGSTER_PG_PORT": str(relay), "DAGSTER_PG_DB": dagster_db.path[1:],
               "DAGSTER_PG_USER": dagster_db.username, "DAGSTER_PG_PASSWORD": dagster_db.password,
               "PLATFORM_LAKE_CATALOG": f"postgres:dbname={lake_db.path[1:]} host={net.gateway} port={relay} "
                                        f"user={lake_db.username}",
               "PGPASSWORD": lake_db.password, "PLATFORM_LAKE_DATA_PATH": f"{folder / 'shared' / 'lake'}/",
               CELERY_BROKER_ENV: broker}
        os.environ["PGPASSWORD"] = lake_db.password  # this process reads the lake's catalog too
        server = stack.enter_context(dagster_dev(folder / "control", env=env,
                                                 instance_yaml=REPO / "deploy" / "dagster.postgres.yaml"))
        for n in range(1, workers + 1):
            net.host(f"worker-{n}").start(
                [str(BIN / "celery"), "-A", "platform_assets.execution", "worker", "-Q", "dagster", "-c", "1",
                 "-n", f"worker-{n}@%h", "--loglevel", "WARNING"], folder / f"worker-{n}.log", env=server.env, cwd=REPO)

        setup = land(server.data_dir, days=1, n_stores=n_stores)  # the store master and a first day
        server.wait_until(lambda: server.latest_materialization("features", "sales_features") and server.idle(), 600,
                          "the store master and a first day")
        started = time.monotonic()
        landed = land(server.data_dir, days=files, n_stores=n_stores)
        rows = sum(f.rows for f in landed)
        total = rows + sum(f.rows for f in setup if f.path.name.startswith("sales_"))

        def done():
            latest = server.latest_materialization("features", "sales_features")
            return latest and latest.get("dagster/row_count") == total and server.idle()
        server.wait_until(done, 3600, f"{files} files through every layer", every=1)
        seconds = time.monotonic() - started
        runs = server.runs()
        hosts = Counter(worker.split("@")[1] for run in runs for worker in step_hosts(server, run["runId"]).values())
        failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
        if failed:
            raise RuntimeError(f"{len(failed)} run(s) did not succeed: {failed}")
        return {"workers": workers, "seconds": seconds, "rows": rows, "runs": len(runs), "steps by host": dict(hosts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=24, help="daily files in the backfill (default 24)")
    parser.add_argument("--stores", type=int, default=4 * 1115, help="stores of the chain (default 4x Rossmann)")
    parser.add_argument("--smoke", action="store_true", help="2 files of 50 stores: that it runs, not what it measures")
    args = parser.parse_args()
    files, stores = (2, 50) if args.smoke else (args.files, args.stores)
    server_url = os.environ.get("PLATFORM_TEST_POSTGRES_URL")
    if not server_url:
        sys.exit("set PLATFORM_TEST_POSTGRES_URL (make bench-cluster does: deploy/postgres.sh)")
    print(f"backfill of {files} daily file(s) of {stores:,} stores, with 1 and then 2 worker hosts")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        for workers in (1, 2):
            results.append(backfill(Path(tmp) / f"workers-{workers}", workers, files, stores, server_url))
            r = results[-1]
            print(f"  {workers} worker host(s): {r['seconds']:7.1f} s  {r['rows']:,} rows  {r['runs']} runs  "
                  f"steps by host {r['steps by host']}", flush=True)
    one, two = (r["seconds"] for r in results)
    print(f"\nworker hosts    seconds   rows/s\n"
          f"1            {one:10.1f} {results[0]['rows'] / one:8,.0f}\n"
          f"2            {two:10.1f} {results[1]['rows'] / two:8,.0f}\n"
          f"speed-up with two worker hosts: {one / two:.2f}x (the same backfill, one run, this machine: "
          f"{os.cpu_count()} cores shared by every host)")


if __name__ == "__main__":
    main()
