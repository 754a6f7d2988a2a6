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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from platform_assets.sample_data.land import land  # noqa: E402
from platform_assets_tests.e2e.dagster_server import dagster_dev  # noqa: E402
from platform_assets_tests.e2e.test_cluster import step_hosts  # noqa: E402
from platform_assets_tests.fixtures.cluster import INSTANCE, production_services, start_workers  # noqa: E402


def backfill(folder: Path, workers: int, files: int, n_stores: int, server_url: str) -> dict:
    """Seconds from landing ``files`` daily files to their features, with ``workers`` worker hosts."""
    with ExitStack() as stack:
        services = stack.enter_context(production_services(folder, server_url, object_store=False))
        os.environ["PGPASSWORD"] = services.env["PGPASSWORD"]  # this process reads the lake's catalog too
        server = stack.enter_context(dagster_dev(folder / "control", env=services.env, instance_yaml=INSTANCE))
        hosts = start_workers(services.net, [f"worker-{n}" for n in range(1, workers + 1)], server.env, folder,
                              "WARNING")

        setup = land(server.data_dir, days=1, n_stores=n_stores)  # the store master and a first day
        server.wait_until(lambda: server.latest_materialization("features", "sales_features") and server.idle(), 600,
                          "the store master and a first day")
        started, machine_before, workers_before = time.monotonic(), machine_cpu(), hosts_cpu(hosts.values())
        landed = land(server.data_dir, days=files, n_stores=n_stores)
        rows = sum(f.rows for f in landed)
        total = rows + sum(f.rows for f in setup if f.path.name.startswith("sales_"))

        def done():
            latest = server.latest_materialization("features", "sales_features")
            return latest and latest.get("dagster/row_count") == total and server.idle()
        server.wait_until(done, 3600, f"{files} files through every layer", every=1)
        seconds = time.monotonic() - started
        machine, on_workers = machine_cpu() - machine_before, hosts_cpu(hosts.values()) - workers_before
        runs = server.runs()
        steps = Counter(worker.split("@")[1] for run in runs for worker in step_hosts(server, run["runId"]).values())
        failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
        if failed:
            raise RuntimeError(f"{len(failed)} run(s) did not succeed: {failed}")
        return {"workers": workers, "seconds": seconds, "rows": rows, "runs": len(runs), "steps by host": dict(steps),
                "cpu on workers": on_workers, "cpu elsewhere": machine - on_workers}


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (every core, /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in open("/proc/stat").readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def hosts_cpu(hosts) -> float:
    """CPU seconds of every process on these hosts, with the children they have waited for."""
    total = 0
    for host in hosts:
        for pid in host.pids():
            try:
                fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


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
                  f"steps by host {r['steps by host']}  CPU s: on the workers {r['cpu on workers']:.0f}, "
                  f"elsewhere {r['cpu elsewhere']:.0f}", flush=True)
    one, two = (r["seconds"] for r in results)
    print(f"\nworker hosts    seconds   rows/s\n"
          f"1            {one:10.1f} {results[0]['rows'] / one:8,.0f}\n"
          f"2            {two:10.1f} {results[1]['rows'] / two:8,.0f}\n"
          f"speed-up with two worker hosts: {one / two:.2f}x (the same backfill, one run, this machine: "
          f"{os.cpu_count()} cores shared by every host)")
    for r in results:
        busy = (r["cpu on workers"] + r["cpu elsewhere"]) / r["seconds"]
        print(f"{r['workers']} worker host(s): the machine busy {busy:.2f} of {os.cpu_count()} cores; "
              f"{r['cpu on workers'] / (r['cpu on workers'] + r['cpu elsewhere']):.0%} of its CPU on the workers' steps, "
              f"the rest the control host's run processes, daemon, webserver, PostgreSQL and Redis")


if __name__ == "__main__":
    main()
