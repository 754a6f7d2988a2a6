"""`platform-assets`: the command line of the platform."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from platform_assets.resources import LandingZone
from platform_assets.sample_data.generator import DEFAULT_SEED, N_STORES
from platform_assets.sample_data.land import land
from platform_assets.settings import Settings
from platform_assets.warehouse import snapshots
from platform_assets.warehouse.lake import LakeError, Warehouse
from platform_assets.warehouse.reader import LakeReader, ReadRefused
from platform_assets.warehouse.snapshots import VersionError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platform-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    land_cmd = commands.add_parser(
        "land",
        help="drop files into the landing folder (yours, or generated Rossmann data)",
        description="Copy FILEs into the landing folder atomically (a hidden name, then a rename), for any "
        "dataset. Without FILEs, write generated store and sales files; sales continue the day after the last "
        "landed sales file unless --from is given.",
    )
    land_cmd.add_argument("files", nargs="*", type=Path, metavar="FILE", help="files to land as they are")
    land_cmd.add_argument("--batch", choices=["daily", "weekly", "all"], default="daily",
                          help="one file per day, per 7 days, or one file for the whole range")
    land_cmd.add_argument("--from", dest="first", type=date.fromisoformat,
                          help="first business day to land (YYYY-MM-DD)")
    land_cmd.add_argument("--days", type=int,
                          help="number of days (default: 1 daily, 7 weekly, the rest of the history for all)")
    land_cmd.add_argument("--seed", type=int, default=DEFAULT_SEED)
    land_cmd.add_argument("--stores", action="store_true", help="land the store master again")
    land_cmd.add_argument("--n-stores", type=int, default=N_STORES,
                          help=f"size of the chain (default {N_STORES}, the real one; benchmarks use 4x)")
    land_cmd.add_argument("--weather", action="store_true",
                          help="also the third feed: the stores' states and the weather of the same days")
    land_cmd.add_argument("--if-empty", action="store_true",
                          help="do nothing if any file ever landed (used by `make run`)")
    land_cmd.add_argument("--data-dir", type=Path, default=None,
                          help="defaults to $PLATFORM_DATA_DIR or ./data")

    sql_cmd = commands.add_parser(
        "sql", help="query the lake read-only (runs may write it meanwhile)",
        description="Run SQL that reads the lake: tables are raw.*, cleaned.*, features.*, ops.*; time travel with "
        "`AT (VERSION => n)`. Only reads run (SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN); anything else, and any "
        "file outside the lake, is refused.")
    sql_cmd.add_argument("query")
    sql_cmd.add_argument("--max-rows", type=int, default=40, help="rows to print (default 40)")
    versions_cmd = commands.add_parser("versions", help="list the versions (lake snapshots) of a table")
    versions_cmd.add_argument("table", help="schema.table, e.g. cleaned.sales or raw.sales")
    rollback_cmd = commands.add_parser(
        "rollback", help="restore a table to an earlier version (itself committed as a new version)")
    rollback_cmd.add_argument("table", help="a layer's table, e.g. cleaned.sales")
    rollback_cmd.add_argument("--version", type=int, required=True, help="the snapshot to restore")

    args = parser.parse_args(argv)
    try:
        if args.command == "sql":
            return _sql(args.query, args.max_rows)
        if args.command == "versions":
            return _versions(args.table)
        if args.command == "rollback":
            return _rollback(args.table, args.version)
    except (LakeError, VersionError, ReadRefused, duckdb.Error) as error:
        message = error.description if isinstance(error, LakeError) else str(error).splitlines()[0]
        print(f"platform-assets {args.command}: {message}", file=sys.stderr)
        return 1
    settings = Settings.from_env(data_dir=args.data_dir)
    data_dir, landing = settings.data_dir, LandingZone.from_settings(settings)
    if args.files:
        for source in args.files:
            try:
                print(f"landed {landing.drop(source).name}: {source.stat().st_size:,} bytes")
            except (OSError, ValueError) as error:
                parser.error(f"{source}: {getattr(error, 'strerror', None) or error}")
        return 0
    try:
        landed = land(data_dir, batch=args.batch, first=args.first, days=args.days,
                      seed=args.seed, n_stores=args.n_stores, stores=args.stores, if_empty=args.if_empty,
                      weather=args.weather, zone=landing)
    except ValueError as error:
        parser.error(str(error))
    if not landed and args.if_empty:
        print(f"{landing.landing}: files already landed, nothing to do")
    for file in landed:
        print(f"landed {file.path.name}: {file.rows:,} rows")
    print(f"{sum(f.rows for f in landed):,} rows in {len(landed)} file(s) -> {landing.landing}")
    return 0


def _warehouse(read_only: bool) -> Warehouse:
    return Warehouse.from_settings(Settings.from_env(), read_only=read_only)


def _sql(query: str, max_rows: int) -> int:
    result = LakeReader.from_settings().sql(query)
    with pl.Config(tbl_rows=max_rows, tbl_cols=-1, tbl_width_chars=10_000, fmt_str_lengths=200):
        print(result)
    return 0


def _versions(table: str) -> int:
    with _warehouse(read_only=True).get_connection() as conn:
        entries = snapshots.history(conn, table)
    print(f"{'version':>7}  {'time':<19}  {'action':<24}  {'run id':<36}  {'rows':>10}  data version")
    for e in entries:
        print(f"{e['version']:>7}  {e['time']:%Y-%m-%d %H:%M:%S}  {e['action'] or '':<24}  {e['run_id'] or '-':<36}  "
              f"{e['rows'] or 0:>10,}  {e['data_version']}")
    if not entries:
        print(f"(none kept: {table} was never materialized, or its versions were expired by maintenance)")
    return 0


def _rollback(table: str, version: int) -> int:
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    with _warehouse(read_only=False).get_connection() as conn:
        done = snapshots.rollback(conn, table, version)
    print(f"{table}: restored version {done['restored_version']} ({done['rows']:,} rows, data version "
          f"{done['data_version']}) as new version {done['new_version']}")
    if instance is None:
        print("DAGSTER_HOME is not set: the rollback is not recorded in Dagster", file=sys.stderr)
    else:
        snapshots.record_rollback(instance, done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
