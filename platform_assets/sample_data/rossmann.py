"""What the generator writes: the Rossmann files' names and column order, as upstream delivers them.

The platform itself reads these files through their declarations (``defs/stores`` and
``defs/sales``: columns, types, name patterns); this is the generator's side of the same
contract, and its tests check the two agree.
"""

from __future__ import annotations

from datetime import date

from platform_assets.datasets.patterns import FilePattern

STORES_FILE = "store.csv"
STORE_STATES_FILE = "store_states.csv"
SALES_PATTERN = FilePattern("sales_{first:date}[_{last:date}].csv")
STORE_COLUMNS = ["Store", "StoreType", "Assortment", "CompetitionDistance", "CompetitionOpenSinceMonth",
                 "CompetitionOpenSinceYear", "Promo2", "Promo2SinceWeek", "Promo2SinceYear", "PromoInterval"]
SALES_COLUMNS = ["Store", "DayOfWeek", "Date", "Sales", "Customers", "Open", "Promo", "StateHoliday",
                 "SchoolHoliday"]
STORE_STATE_COLUMNS = ["Store", "State"]
WEATHER_COLUMNS = ["State", "Date", "MaxTemperatureC", "MeanTemperatureC", "MinTemperatureC", "PrecipitationMm",
                   "Events"]


def sales_file_name(first: date, last: date) -> str:
    """``sales_<day>.csv`` for one day, ``sales_<first>_<last>.csv`` for a range."""
    return dated_file_name("sales", first, last)


def dated_file_name(prefix: str, first: date, last: date) -> str:
    """``<prefix>_<day>.csv`` for one day, ``<prefix>_<first>_<last>.csv`` for a range."""
    if first == last:
        return f"{prefix}_{first.isoformat()}.csv"
    return f"{prefix}_{first.isoformat()}_{last.isoformat()}.csv"


def last_date_of_sales_file(name: str) -> date | None:
    """The last business day a sales file name covers, or None for other names."""
    dates = SALES_PATTERN.dates(name)
    return dates[1] if dates else None
