"""`platform-assets`: the command line of the platform."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

import dagster as dg

from platform_assets.resources import Warehouse
from platform_assets.rollback import VERSIONED_TABLES, rollback
from platform_assets.sample_data.generator import DEFAULT_SEED, N_STORES
from platform_assets.sample_data.land import land
from platform_assets.settings import Settings
from platform_assets.versions import VersionError, history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platform-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    land_cmd = commands.add_parser(
        "land",
        help="write Rossmann-shaped files into the landing folder",
        description="Write generated store and sales files into the landing folder, atomically. "
        "Sales continue the day after the last landed sales file unless --from is given.",
    )
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
    land_cmd.add_argument("--if-empty", action="store_true",
                          help="do nothing if any file ever landed (used by `make run`)")
    land_cmd.add_argument("--data-dir", type=Path, default=None,
                          help="defaults to $PLATFORM_DATA_DIR or ./data")

    versions_cmd = commands.add_parser("versions", help="list the Delta versions of a versioned table")
    versions_cmd.add_argument("table", choices=VERSIONED_TABLES)
    rollback_cmd = commands.add_parser(
        "rollback", help="restore a table to an earlier version (itself recorded as a new version)")
    rollback_cmd.add_argument("table", choices=VERSIONED_TABLES)
    rollback_cmd.add_argument("--version", type=int, required=True, help="the Delta version to restore")

    args = parser.parse_args(argv)
    if args.command == "versions":
        return _versions(args.table)
    if args.command == "rollback":
        return _rollback(args.table, args.version)
    data_dir = args.data_dir.resolve() if args.data_dir else Settings.from_env().data_dir
    try:
        landed = land(data_dir, batch=args.batch, first=args.first, days=args.days,
                      seed=args.seed, n_stores=args.n_stores, stores=args.stores, if_empty=args.if_empty)
    except ValueError as error:
        parser.error(str(error))
    if not landed and args.if_empty:
        print(f"{data_dir / 'landing'}: files already landed, nothing to do")
    for file in landed:
        print(f"landed {file.path.name}: {file.rows:,} rows")
    print(f"{sum(f.rows for f in landed):,} rows in {len(landed)} file(s) -> {data_dir / 'landing'}")
    return 0


def _warehouse() -> Warehouse:
    return Warehouse.from_settings(Settings.from_env())


def _versions(table: str) -> int:
    try:
        entries = history(_warehouse().versions_path, table)
    except VersionError as error:
        print(f"platform-assets versions: {error}", file=sys.stderr)
        return 1
    print(f"{'version':>7}  {'time':<19}  {'action':<16}  {'run id':<36}  {'rows':>10}  data version")
    for e in entries:
        print(f"{e['version']:>7}  {e['time']:%Y-%m-%d %H:%M:%S}  {e['action'] or '':<16}  {e['run_id'] or '-':<36}  "
              f"{e['rows'] or 0:>10,}  {e['data_version']}")
    return 0


def _rollback(table: str, version: int) -> int:
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    try:
        done = rollback(_warehouse(), table, version, instance)
    except VersionError as error:
        print(f"platform-assets rollback: {error}", file=sys.stderr)
        return 1
    print(f"{table}: restored version {done['restored_version']} ({done['rows']:,} rows, data version "
          f"{done['data_version']}) as new version {done['new_version']}")
    if instance is None:
        print("DAGSTER_HOME is not set: the rollback is not recorded in Dagster", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
