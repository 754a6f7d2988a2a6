"""`make soak`: a busy day against a real `dagster dev`, then the books are checked.

Sixty daily files land in quick bursts while a loop keeps launching manual
materializations of the downstream layers through the GraphQL API, as users
clicking in the UI would. At the end every file must be loaded exactly once,
every run must have succeeded (or been retried successfully), the row counts
must equal the generator's, and no run log may show a DuckDB lock error.

    .venv/bin/python -m platform_assets_tests.e2e.soak [--files 60] [--keep DIR]
"""

import argparse
import random
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path


from platform_assets.sample_data.land import land
from platform_assets_tests.e2e.dagster_server import dagster_dev

LOCK_ERRORS = ("Could not set lock", "Conflicting lock")


def soak(workdir: Path, files: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    with dagster_dev(workdir) as server:
        landed = land(server.data_dir, days=1)  # the store master and the first day
        stop = threading.Event()
        manual_runs: list[str] = []

        def click_materialize() -> None:
            # users click once there is something to see: after the first sales file is loaded
            while not (stop.is_set() or server.latest_materialization("raw", "sales")):
                time.sleep(2)
            while not stop.wait(rng.uniform(5, 15)):
                # a user whose last two clicks are still waiting does not click again
                waiting = [r for r in server.runs() if r["runId"] in manual_runs[-2:]
                           and r["status"] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")]
                if len(waiting) < 2:
                    manual_runs.append(server.launch(("cleaned", "sales"), ("features", "sales_features")))

        clicker = threading.Thread(target=click_materialize, daemon=True)
        clicker.start()
        started = time.monotonic()
        while len(landed) - 1 < files:
            burst = min(rng.randint(1, 6), files - (len(landed) - 1))
            landed += land(server.data_dir, days=burst, batch="daily")
            time.sleep(rng.uniform(0.5, 4))
        print(f"landed {len(landed) - 1} daily files in {time.monotonic() - started:.0f}s", flush=True)

        expected_rows = sum(f.rows for f in landed if f.path.name.startswith("sales_"))

        def features_caught_up() -> bool:
            latest = server.latest_materialization("features", "sales_features")
            return bool(latest) and latest.get("dagster/row_count") == expected_rows

        server.wait_until(features_caught_up, 1800, "features for every landed day", every=5)
        stop.set()
        clicker.join()
        server.wait_until(server.idle, 1800, "all runs to finish", every=5)
        elapsed = time.monotonic() - started
        runs = server.runs()

    ledger = dict(server.query("SELECT file_name, status FROM ops.landed_files"))
    loaded = dict(server.query("SELECT _source_file, count(*) FROM raw.sales GROUP BY 1"))
    counts = {t: server.query(f"SELECT count(*) FROM {t}")[0][0]
              for t in ("raw.sales", "cleaned.sales", "features.sales_features")}
    statuses = Counter(r["status"] for r in runs)
    retried = {tag["value"] for r in runs for tag in r["tags"] if tag["key"] == "dagster/parent_run_id"}
    failed_not_retried = [r["runId"] for r in runs if r["status"] == "FAILURE" and r["runId"] not in retried]
    load_runs = Counter(tag["value"] for r in runs if r["status"] == "SUCCESS"
                        for tag in r["tags"] if tag["key"] == "dagster/partition")
    log = server.log.read_text()
    return {
        "files landed": len(landed),
        "files in the ledger as loaded": sum(1 for s in ledger.values() if s == "loaded"),
        "files loaded by more than one successful run": sorted(k for k, n in load_runs.items() if n > 1),
        "sales files with rows": len(loaded),
        "rows expected": expected_rows,
        "rows per table": counts,
        "runs by status": dict(statuses),
        "manual materializations launched": len(manual_runs),
        "failed runs without a retry": failed_not_retried,
        "DuckDB lock errors in the logs": sum(log.count(e) for e in LOCK_ERRORS),
        "seconds": round(elapsed),
        "_ok": (len(ledger) == len(landed) == len(loaded) + 1
                and all(s == "loaded" for s in ledger.values())
                and all(loaded[f.path.name] == f.rows for f in landed if f.path.name in loaded)
                and set(counts.values()) == {expected_rows}
                and not failed_not_retried
                and not [k for k, n in load_runs.items() if n > 1]
                and statuses.keys() <= {"SUCCESS", "FAILURE"}
                and not any(e in log for e in LOCK_ERRORS)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=60, help="daily files to land")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (instance, data, log)")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="soak-"))
    result = soak(workdir, args.files)
    ok = result.pop("_ok")
    for key, value in result.items():
        print(f"{key:<46} {value}")
    print(f"\n{'PASSED' if ok else 'FAILED'} (instance, data and dagster dev log in {workdir})")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
