"""Landing -> fresh features under a real `dagster dev` with the default settings, and what idling costs.

Lands the store master, then daily files one after another (each once the previous one
reached the features), and reads every timestamp from the Dagster instance: when the
file landed, when the landing sensor created its run, when runs started and ended, when
each layer materialized. Prints p50/p90 against the goals, the median breakdown, and the
CPU an idle `dagster dev` burns (the whole process group, from /proc) with these settings
and with the intervals of before (sensor 10 s, automation 30 s), in the same run.

    .venv/bin/python benchmarks/latency.py [--files 10] [--idle 60]

A lone file is carried through every layer in its own run: its raw checks then run inside
"cleaned + features", and "checks", "waiting for automation" and "downstream run start" are 0.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402

from platform_assets.sample_data.land import land  # noqa: E402
from platform_assets.settings import Settings  # noqa: E402
from platform_assets_tests.e2e.dagster_server import dagster_dev  # noqa: E402

GOALS = {"p50": 15.0, "p90": 25.0}
BEFORE = {"sensor_interval": 10, "automation_interval": 30}
STAGES = ["waiting for the sensor", "run start", "load", "checks", "waiting for automation",
          "downstream run start", "cleaned + features", "total"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by every live process of a process group (utime + stime)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def idle_cpu(server, seconds: float) -> float:
    """Percent of one core the idle server uses, measured over ``seconds``."""
    before, started = group_cpu_seconds(server.pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (group_cpu_seconds(server.pid) - before) / (time.monotonic() - started)


def stages(instance: dg.DagsterInstance, name: str, landed: float) -> dict[str, float]:
    """The timestamps of one file's way to the features, as durations per stage."""
    raw = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(["raw", "sales"]), asset_partitions=[name]), limit=1).records[0]
    raw_run = instance.get_run_record_by_id(raw.run_id)
    features = next(r for r in instance.fetch_materializations(dg.AssetKey(["features", "sales_features"]),
                                                               limit=20).records[::-1]
                    if r.timestamp > raw.timestamp)
    down_run = instance.get_run_record_by_id(features.run_id)
    carried = down_run.dagster_run.run_id == raw_run.dagster_run.run_id
    raw_end = raw.timestamp if carried else raw_run.end_time  # one run: its checks are part of the load
    return {
        "waiting for the sensor": raw_run.create_timestamp.timestamp() - landed,
        "run start": raw_run.start_time - raw_run.create_timestamp.timestamp(),
        "load": raw.timestamp - raw_run.start_time,
        "checks": 0.0 if carried else raw_run.end_time - raw.timestamp,
        "waiting for automation": 0.0 if carried else down_run.create_timestamp.timestamp() - raw_end,
        "downstream run start": 0.0 if carried else down_run.start_time - down_run.create_timestamp.timestamp(),
        "cleaned + features": features.timestamp - (raw.timestamp if carried else down_run.start_time),
        "total": features.timestamp - landed,
    }


def features_after(instance: dg.DagsterInstance, after: float) -> bool:
    records = instance.fetch_materializations(dg.AssetKey(["features", "sales_features"]), limit=1).records
    return bool(records) and records[0].timestamp > after


def measure_latency(workdir: Path, files: int) -> list[dict[str, float]]:
    defaults = Settings.from_env()
    with dagster_dev(workdir, sensor_interval=defaults.sensor_interval_seconds,
                     automation_interval=defaults.automation_interval_seconds) as server:
        with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
            land(server.data_dir, days=1)  # the store master and the first day
            server.wait_until(lambda: features_after(instance, 0), 300, "the first day's features")
            measured = []
            for i in range(files):
                landed = time.time()
                (day,) = land(server.data_dir, days=1)
                server.wait_until(lambda: features_after(instance, landed), 300, f"features with {day.path.name}")
                measured.append(stages(instance, day.path.name, landed))
                print(f"  {day.path.name}: {measured[-1]['total']:.1f} s", flush=True)
            return measured


def measure_idle(workdir: Path, seconds: float, settle: float, **intervals) -> float:
    with dagster_dev(workdir, **intervals) as server:
        time.sleep(settle)  # start-up work settles
        return idle_cpu(server, seconds)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[int(q * 10) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60, help="seconds of idle CPU measurement per configuration")
    parser.add_argument("--settle", type=float, default=20, help="seconds an idle server gets to finish starting")
    args = parser.parse_args()
    defaults = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        print(f"landing {args.files} daily file(s) one after another under dagster dev "
              f"(sensor {defaults.sensor_interval_seconds} s, automation {defaults.automation_interval_seconds} s)")
        measured = measure_latency(Path(tmp) / "latency", args.files)
        idle_now = measure_idle(Path(tmp) / "idle-now", args.idle, args.settle,
                                sensor_interval=defaults.sensor_interval_seconds,
                                automation_interval=defaults.automation_interval_seconds)
        idle_before = measure_idle(Path(tmp) / "idle-before", args.idle, args.settle, **BEFORE)

    totals = [m["total"] for m in measured]
    print("\nlanding -> fresh features        seconds")
    for label, q in (("p50", 0.5), ("p90", 0.9)):
        value = percentile(totals, q)
        verdict = "met" if value <= GOALS[label] else "MISSED"
        print(f"{label:<32} {value:7.1f}   goal <= {GOALS[label]:.0f} s: {verdict}")
    print("\nmedian per stage                 seconds")
    for stage in STAGES:
        print(f"{stage:<32} {statistics.median(m[stage] for m in measured):7.1f}")
    verdict = "met" if idle_now <= idle_before * 1.1 else "MISSED"  # 10%: the noise of a 2-core machine
    print(f"\nidle dagster dev, % of one core  {idle_now:7.1f}   before (sensor 10 s, automation 30 s): "
          f"{idle_before:.1f}   no more than before: {verdict}")


if __name__ == "__main__":
    main()
