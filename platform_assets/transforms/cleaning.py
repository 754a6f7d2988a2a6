"""Cleaning: raw sales joined with the store master, one row per (store, date).

Pure Polars, no I/O. The rules:

- duplicates across files: the row of the file that landed last wins (``_landed_at``,
  when its content first landed; ties: the later file name), see ``latest_file_wins``.
  Not the load time: re-loading an older file must not undo a correction;
- StateHoliday: the number 0 and the string "0" (and stray quotes/spaces) are the same code;
- CompetitionDistance: missing -> median of the store master, flagged ``competition_distance_missing``;
- CompetitionOpenSince*: missing -> 1900-01-01 ("competitor there before records began"),
  flagged ``competition_open_since_missing``;
- Promo2Since*: the Monday of that ISO week when Promo2 = 1; null exactly when Promo2 = 0;
- closed days are kept, flagged by ``is_open = false``;
- rows breaking a hard rule are kept and named in ``quality_issue`` for the quality checks:
  ``unknown_store``, ``negative_sales``, ``sales_on_closed_day`` (first that applies).
"""

from datetime import date

import polars as pl

UNKNOWN_OPENING = date(1900, 1, 1)
QUALITY_ISSUES = ("unknown_store", "negative_sales", "sales_on_closed_day")

COLUMNS: dict[str, str] = {
    "store": "Store id.",
    "date": "Business day.",
    "day_of_week": "ISO day of week, 1 = Monday.",
    "sales": "Turnover of the day; 0 when closed.",
    "customers": "Customers of the day; 0 when closed.",
    "is_open": "Whether the store was open.",
    "promo": "Whether the store ran a promo that day.",
    "state_holiday": "0 = none, a = public, b = Easter, c = Christmas (0 and \"0\" unified).",
    "school_holiday": "Whether public schools were closed.",
    "store_type": "Store model, a..d.",
    "assortment": "a = basic, b = extra, c = extended.",
    "competition_distance": "Metres to the nearest competitor; median of the master when unknown.",
    "competition_distance_missing": "The distance was unknown and filled.",
    "competition_open_since": "First day of the month the competitor opened; 1900-01-01 when unknown.",
    "competition_open_since_missing": "The opening month was unknown and filled.",
    "promo2": "Whether the store takes part in Promo2.",
    "promo2_since": "Monday of the ISO week Promo2 started; null when promo2 is false.",
    "promo_interval": "Months Promo2 restarts, e.g. 'Jan,Apr,Jul,Oct'; null when promo2 is false.",
    "quality_issue": "Hard rule the row breaks (unknown_store, negative_sales, sales_on_closed_day), else null.",
    "_source_file": "Landed file the row came from (the latest, when files overlap).",
    "_loaded_at": "When that file was loaded into raw.",
}

# Output column -> the raw columns it is derived from, as (table, column).
LINEAGE: dict[str, list[tuple[str, str]]] = {
    "store": [("raw.sales", "Store")],
    "date": [("raw.sales", "Date")],
    "day_of_week": [("raw.sales", "DayOfWeek")],
    "sales": [("raw.sales", "Sales")],
    "customers": [("raw.sales", "Customers")],
    "is_open": [("raw.sales", "Open")],
    "promo": [("raw.sales", "Promo")],
    "state_holiday": [("raw.sales", "StateHoliday")],
    "school_holiday": [("raw.sales", "SchoolHoliday")],
    "store_type": [("raw.stores", "StoreType")],
    "assortment": [("raw.stores", "Assortment")],
    "competition_distance": [("raw.stores", "CompetitionDistance")],
    "competition_distance_missing": [("raw.stores", "CompetitionDistance")],
    "competition_open_since": [("raw.stores", "CompetitionOpenSinceMonth"), ("raw.stores", "CompetitionOpenSinceYear")],
    "competition_open_since_missing": [("raw.stores", "CompetitionOpenSinceMonth"), ("raw.stores", "CompetitionOpenSinceYear")],
    "promo2": [("raw.stores", "Promo2")],
    "promo2_since": [("raw.stores", "Promo2"), ("raw.stores", "Promo2SinceWeek"), ("raw.stores", "Promo2SinceYear")],
    "promo_interval": [("raw.stores", "Promo2"), ("raw.stores", "PromoInterval")],
    "quality_issue": [("raw.sales", "Store"), ("raw.sales", "Sales"), ("raw.sales", "Open"), ("raw.stores", "Store")],
    "_source_file": [("raw.sales", "_source_file")],
    "_loaded_at": [("raw.sales", "_loaded_at")],
}


def latest_file_wins(raw_sales: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (Store, Date), sorted by them: the row of the file that landed last.

    One sort does both jobs: the key's rows end up together, the winner last, and the
    result is already in the order cleaned.sales stores it (no hash table, no second sort).
    """
    key = ("Store", "Date")
    last_of_key = pl.any_horizontal(pl.col(c).ne_missing(pl.col(c).shift(-1)) for c in key)
    return (
        raw_sales.sort([*key, "_landed_at", "_source_file"], nulls_last=False, maintain_order=True)
        .filter(last_of_key | (pl.int_range(pl.len()) == pl.len() - 1))
    )


def clean_stores(raw_stores: pl.LazyFrame) -> pl.LazyFrame:
    """The store master with missing values filled by the documented rules."""
    competition_known = pl.col("CompetitionOpenSinceYear").is_not_null() & pl.col(
        "CompetitionOpenSinceMonth"
    ).is_not_null()
    is_promo2 = pl.col("Promo2") == 1
    return raw_stores.select(
        pl.col("Store").cast(pl.Int32).alias("store"),
        pl.col("StoreType").alias("store_type"),
        pl.col("Assortment").alias("assortment"),
        pl.col("CompetitionDistance")
        .cast(pl.Float64)
        .fill_null(pl.col("CompetitionDistance").cast(pl.Float64).median())
        .alias("competition_distance"),
        pl.col("CompetitionDistance").is_null().alias("competition_distance_missing"),
        pl.when(competition_known)
        .then(pl.date(pl.col("CompetitionOpenSinceYear"), pl.col("CompetitionOpenSinceMonth"), 1))
        .otherwise(pl.lit(UNKNOWN_OPENING))
        .alias("competition_open_since"),
        (~competition_known).alias("competition_open_since_missing"),
        is_promo2.alias("promo2"),
        pl.when(is_promo2)
        .then(_iso_week_monday(pl.col("Promo2SinceYear"), pl.col("Promo2SinceWeek")))
        .alias("promo2_since"),
        pl.when(is_promo2).then(pl.col("PromoInterval")).alias("promo_interval"),
    )


def clean_sales(raw_sales: pl.LazyFrame, raw_stores: pl.LazyFrame) -> pl.LazyFrame:
    """Deduplicated, typed sales joined with the cleaned store master.

    ``raw_sales`` is raw.sales with ``_landed_at``, when each row's file landed (from the ledger).
    """
    sales = latest_file_wins(raw_sales).select(
        pl.col("Store").cast(pl.Int32).alias("store"),
        pl.col("Date").alias("date"),
        pl.col("DayOfWeek").cast(pl.Int8).alias("day_of_week"),
        pl.col("Sales").cast(pl.Int32).alias("sales"),
        pl.col("Customers").cast(pl.Int32).alias("customers"),
        (pl.col("Open") == 1).alias("is_open"),
        (pl.col("Promo") == 1).alias("promo"),
        _normalise_state_holiday(pl.col("StateHoliday")).alias("state_holiday"),
        (pl.col("SchoolHoliday") == 1).alias("school_holiday"),
        "_source_file",
        "_loaded_at",
    )
    stores = clean_stores(raw_stores).with_columns(pl.lit(True).alias("_known_store"))
    return (
        sales.join(stores, on="store", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("_known_store").is_null())
            .then(pl.lit("unknown_store"))
            .when(pl.col("sales") < 0)
            .then(pl.lit("negative_sales"))
            .when(~pl.col("is_open") & (pl.col("sales") > 0))
            .then(pl.lit("sales_on_closed_day"))
            .alias("quality_issue")
        )
        .select(list(COLUMNS))  # sorted by (store, date): a range of stores reads little of a chunk of dates
    )


def _normalise_state_holiday(code: pl.Expr) -> pl.Expr:
    return code.cast(pl.String).str.strip_chars().str.strip_chars('"').str.to_lowercase()


def _iso_week_monday(year: pl.Expr, week: pl.Expr) -> pl.Expr:
    """Monday of ISO week ``week`` of ``year``: week 1 is the week holding January 4th."""
    january_4 = pl.date(year, 1, 4)
    return january_4 - pl.duration(days=january_4.dt.weekday() - 1) + pl.duration(weeks=week - 1)
