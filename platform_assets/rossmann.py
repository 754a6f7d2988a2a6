"""What upstream Rossmann files look like: names, columns, types, meanings.

The generator writes these files, the raw loader parses them against this
contract (no type guessing) and the assets publish it as column schemas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import dagster as dg


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    description: str


@dataclass(frozen=True)
class FileSchema:
    kind: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def table_schema(self, *extra: Column) -> dg.TableSchema:
        return dg.TableSchema(
            columns=[
                dg.TableColumn(c.name, c.duckdb_type, description=c.description)
                for c in (*self.columns, *extra)
            ]
        )


SALES = FileSchema(
    kind="sales",
    columns=(
        Column("Store", "INTEGER", "Store id, 1..1115, key into the store master."),
        Column("DayOfWeek", "TINYINT", "ISO day of week of Date, 1 = Monday .. 7 = Sunday."),
        Column("Date", "DATE", "Business day the row describes."),
        Column("Sales", "INTEGER", "Turnover of the day; 0 on closed days."),
        Column("Customers", "INTEGER", "Number of customers of the day; 0 on closed days."),
        Column("Open", "TINYINT", "1 if the store was open, 0 if closed."),
        Column("Promo", "TINYINT", "1 if the store ran a promo that day."),
        Column("StateHoliday", "VARCHAR", "0 = none, a = public, b = Easter, c = Christmas."),
        Column("SchoolHoliday", "TINYINT", "1 if public schools were closed that day."),
    ),
)

STORES = FileSchema(
    kind="stores",
    columns=(
        Column("Store", "INTEGER", "Store id, 1..1115."),
        Column("StoreType", "VARCHAR", "One of four store models, a..d."),
        Column("Assortment", "VARCHAR", "a = basic, b = extra, c = extended."),
        Column("CompetitionDistance", "INTEGER", "Metres to the nearest competitor; empty if unknown."),
        Column("CompetitionOpenSinceMonth", "TINYINT", "Month the nearest competitor opened; empty if unknown."),
        Column("CompetitionOpenSinceYear", "SMALLINT", "Year the nearest competitor opened; empty if unknown."),
        Column("Promo2", "TINYINT", "1 if the store takes part in the continuing promotion Promo2."),
        Column("Promo2SinceWeek", "TINYINT", "ISO week Promo2 started; empty when Promo2 = 0."),
        Column("Promo2SinceYear", "SMALLINT", "Year Promo2 started; empty when Promo2 = 0."),
        Column("PromoInterval", "VARCHAR", "Months Promo2 restarts, e.g. 'Jan,Apr,Jul,Oct'; empty when Promo2 = 0."),
    ),
)

LINEAGE_COLUMNS = (
    Column("_source_file", "VARCHAR", "Landed file the row was loaded from."),
    Column("_loaded_at", "TIMESTAMP WITH TIME ZONE", "When the row was loaded."),
)

STORES_FILE = "store.csv"
_SALES_FILE = re.compile(r"^sales_(\d{4}-\d{2}-\d{2})(?:_(\d{4}-\d{2}-\d{2}))?\.csv$")
EXPECTED_NAMES = f"{STORES_FILE} or sales_<YYYY-MM-DD>[_<YYYY-MM-DD>].csv"


def sales_file_name(first: date, last: date) -> str:
    """``sales_<day>.csv`` for one day, ``sales_<first>_<last>.csv`` for a range."""
    if first == last:
        return f"sales_{first.isoformat()}.csv"
    return f"sales_{first.isoformat()}_{last.isoformat()}.csv"


def sales_file_dates(name: str) -> tuple[date, date] | None:
    """The first and last business day a sales file name covers, or None if it is not a valid sales name.

    Total: any string gives an answer, never an exception (names come from outside).
    """
    match = _SALES_FILE.match(name)
    if match is None:
        return None
    try:
        first = date.fromisoformat(match.group(1))
        last = date.fromisoformat(match.group(2) or match.group(1))
    except ValueError:
        return None
    return (first, last) if first <= last else None


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a file the platform loads, or None when it is one."""
    if name == STORES_FILE or sales_file_dates(name) is not None:
        return None
    match = _SALES_FILE.match(name)
    if match is None:
        return f"not a file the platform knows; expected {EXPECTED_NAMES}"
    for day in filter(None, match.groups()):
        try:
            date.fromisoformat(day)
        except ValueError:
            return f"{day} in its name is not a calendar date"
    return f"its first day {match.group(1)} is after its last day {match.group(2)}"


def last_date_of_sales_file(name: str) -> date | None:
    """The last business day a sales file name covers, or None for other names."""
    dates = sales_file_dates(name)
    return dates[1] if dates else None


def file_schema_for(name: str) -> FileSchema | None:
    if name == STORES_FILE:
        return STORES
    if sales_file_dates(name) is not None:
        return SALES
    return None
