"""`platform-assets`: the command line of the platform."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from platform_assets.sample_data.generator import DEFAULT_SEED
from platform_assets.sample_data.land import land
from platform_assets.settings import Settings


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
    land_cmd.add_argument("--if-empty", action="store_true",
                          help="do nothing if any file ever landed (used by `make run`)")
    land_cmd.add_argument("--data-dir", type=Path, default=None,
                          help="defaults to $PLATFORM_DATA_DIR or ./data")

    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve() if args.data_dir else Settings.from_env().data_dir
    try:
        landed = land(data_dir, batch=args.batch, first=args.first, days=args.days,
                      seed=args.seed, stores=args.stores, if_empty=args.if_empty)
    except ValueError as error:
        parser.error(str(error))
    if not landed and args.if_empty:
        print(f"{data_dir / 'landing'}: files already landed, nothing to do")
    for file in landed:
        print(f"landed {file.path.name}: {file.rows:,} rows")
    print(f"{sum(f.rows for f in landed):,} rows in {len(landed)} file(s) -> {data_dir / 'landing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
