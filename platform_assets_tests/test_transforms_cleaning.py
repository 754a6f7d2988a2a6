"""Cleaning rules on hand-made frames, expected values written out by hand."""

from datetime import date, datetime

import polars as pl

from platform_assets.transforms.cleaning import clean_sales, clean_stores

T1, T2 = datetime(2015, 1, 6, 8, 0), datetime(2015, 1, 7, 8, 0)

STORES = pl.LazyFrame(
    {
        "Store": [1, 2, 3],
        "StoreType": ["a", "b", "c"],
        "Assortment": ["a", "b", "c"],
        "CompetitionDistance": [100, None, 300],
        "CompetitionOpenSinceMonth": [9, None, None],
        "CompetitionOpenSinceYear": [2008, None, None],
        "Promo2": [0, 1, 1],
        "Promo2SinceWeek": [None, 1, 10],
        "Promo2SinceYear": [None, 2013, 2015],
        "PromoInterval": [None, "Jan,Apr,Jul,Oct", "Mar,Jun,Sept,Dec"],
    }
)


def sales(rows):
    """raw.sales rows as cleaned reads them: with ``_landed_at``; loaded (``_loaded_at``) after T2 by default."""
    columns = ["Store", "Date", "Sales", "Open", "StateHoliday", "_source_file", "_landed_at", "_loaded_at"]
    frame = pl.LazyFrame([dict(zip(columns, (*r, T2)[:8])) for r in rows], orient="row")
    return frame.with_columns(
        DayOfWeek=pl.col("Date").dt.weekday(), Customers=pl.col("Sales") // 10, Promo=0, SchoolHoliday=0
    )


def test_store_master_gaps_are_filled_by_the_documented_rules():
    out = clean_stores(STORES).collect().to_dicts()
    assert [(r["competition_distance"], r["competition_distance_missing"]) for r in out] == [
        (100.0, False), (200.0, True), (300.0, False)]  # median of 100 and 300
    assert [(r["competition_open_since"], r["competition_open_since_missing"]) for r in out] == [
        (date(2008, 9, 1), False), (date(1900, 1, 1), True), (date(1900, 1, 1), True)]
    # Monday of ISO week 1 of 2013 is 2012-12-31; of week 10 of 2015 is 2015-03-02
    assert [(r["promo2"], r["promo2_since"], r["promo_interval"]) for r in out] == [
        (False, None, None), (True, date(2012, 12, 31), "Jan,Apr,Jul,Oct"), (True, date(2015, 3, 2), "Mar,Jun,Sept,Dec")]


def test_the_file_that_landed_last_wins_whenever_it_was_loaded_and_ties_go_to_the_later_name():
    raw = sales([
        (1, date(2015, 1, 5), 100, 1, "0", "sales_2015-01-05.csv", T1, T2 + (T2 - T1)),  # re-loaded later
        (1, date(2015, 1, 5), 150, 1, "0", "sales_2015-01-05_2015-01-11.csv", T2),
        (2, date(2015, 1, 5), 70, 1, "0", "b.csv", T1),
        (2, date(2015, 1, 5), 80, 1, "0", "a.csv", T1),
    ])
    out = clean_sales(raw, STORES).collect()
    assert out.select("store", "sales", "_source_file").rows() == [
        (1, 150, "sales_2015-01-05_2015-01-11.csv"), (2, 70, "b.csv")]


def test_state_holiday_codes_are_unified_and_hard_rule_breaks_are_flagged_not_dropped():
    raw = sales([
        (1, date(2015, 1, 5), 100, 1, '"0"', "f.csv", T1),
        (1, date(2015, 1, 6), 0, 0, "A", "f.csv", T1),
        (2, date(2015, 1, 5), 50, 0, " 0 ", "f.csv", T1),  # closed day with sales
        (3, date(2015, 1, 5), -5, 1, "0", "f.csv", T1),  # negative sales
        (9, date(2015, 1, 5), 10, 1, "c", "f.csv", T1),  # not in the store master
    ])
    out = clean_sales(raw, STORES).collect()
    assert out.select("store", "date", "state_holiday", "is_open", "quality_issue").rows() == [
        (1, date(2015, 1, 5), "0", True, None),  # sorted by store, then date
        (1, date(2015, 1, 6), "a", False, None),
        (2, date(2015, 1, 5), "0", False, "sales_on_closed_day"),
        (3, date(2015, 1, 5), "0", True, "negative_sales"),
        (9, date(2015, 1, 5), "c", True, "unknown_store"),
    ]
    unknown = out.filter(pl.col("store") == 9).row(0, named=True)
    assert unknown["store_type"] is None and unknown["sales"] == 10


def test_rows_come_out_one_per_store_and_day_sorted_and_rows_without_a_key_collapse_like_any_key():
    raw = sales([
        (2, date(2015, 1, 6), 20, 1, "0", "a.csv", T1),
        (1, date(2015, 1, 6), 10, 1, "0", "a.csv", T1),
        (2, date(2015, 1, 5), 30, 1, "0", "a.csv", T1),
        (1, None, 40, 1, "0", "a.csv", T1),
        (1, None, 50, 1, "0", "b.csv", T2),  # the same missing key from a later file: it wins
        (2, date(2015, 1, 6), 60, 1, "0", "b.csv", T2),
    ])
    out = clean_sales(raw, STORES).collect()
    assert out.select("store", "date", "sales").rows() == [
        (1, None, 50), (1, date(2015, 1, 6), 10), (2, date(2015, 1, 5), 30), (2, date(2015, 1, 6), 60)]
