"""Feature rules on a hand-made cleaned frame, expected values written out by hand."""

import math
import statistics
from datetime import date, timedelta

import polars as pl
import pytest

from platform_assets.transforms import cleaning
from platform_assets.transforms.features import affected_dates, build_features, input_range

MARCH = [date(2015, 3, d) for d in range(1, 11) if d != 5]  # store 1 has no row on March 5th


def cleaned_rows():
    rows = []
    for day in MARCH:
        rows.append(dict(
            store=1, date=day, sales=10 * day.day, customers=day.day, state_holiday="a" if day.day == 3 else "0",
            competition_open_since=date(2015, 2, 1), competition_distance=100.0,
            promo2=True, promo2_since=date(2015, 3, 2), promo_interval="Mar,Jun,Sept,Dec",
        ))
    for day in (date(2015, 2, 28), date(2015, 3, 1)):
        rows.append(dict(
            store=2, date=day, sales=500, customers=50, state_holiday="0",
            competition_open_since=date(2015, 4, 1), competition_distance=0.0,
            promo2=True, promo2_since=date(2012, 12, 31), promo_interval="Jan,Apr,Jul,Oct",
        ))
    defaults = dict(day_of_week=0, is_open=True, promo=False, school_holiday=False, store_type="a", assortment="a",
                    competition_distance_missing=False, competition_open_since_missing=False, quality_issue=None,
                    _source_file="f.csv", _loaded_at=None)
    return pl.LazyFrame([{**defaults, **r} for r in rows]).select(list(cleaning.COLUMNS))


@pytest.fixture(scope="module")
def features():
    out = build_features(cleaned_rows()).collect()
    return {(r["store"], r["date"]): r for r in out.to_dicts()}


def row(features, store, day):
    return features[(store, date(2015, 3, day) if isinstance(day, int) else day)]


def test_lags_are_exact_calendar_days_and_gaps_give_null(features):
    assert row(features, 1, 6)["sales_lag_1"] is None  # March 5th has no row
    assert row(features, 1, 7)["sales_lag_1"] == 60
    assert row(features, 1, 7)["customers_lag_1"] == 6
    assert row(features, 1, 8)["sales_lag_7"] == 10
    assert row(features, 1, 7)["sales_lag_7"] is None  # February 28th: no row for store 1
    assert row(features, 1, 10)["sales_lag_14"] is None
    assert row(features, 2, 1)["sales_lag_1"] == 500  # store 2's own February 28th, not store 1's


def test_rolling_stats_use_only_the_days_before(features):
    assert row(features, 1, 8)["sales_mean_7d"] == pytest.approx(statistics.mean([10, 20, 30, 40, 60, 70]))
    assert row(features, 1, 8)["sales_std_7d"] == pytest.approx(statistics.stdev([10, 20, 30, 40, 60, 70]))
    assert row(features, 1, 10)["sales_mean_7d"] == pytest.approx(statistics.mean([30, 40, 60, 70, 80, 90]))
    assert row(features, 1, 10)["sales_mean_28d"] == pytest.approx(statistics.mean([10, 20, 30, 40, 60, 70, 80, 90]))
    assert row(features, 1, 1)["sales_mean_7d"] is None and row(features, 1, 1)["sales_std_7d"] is None
    assert row(features, 1, 2)["sales_mean_7d"] == 10 and row(features, 1, 2)["sales_std_7d"] is None


def test_calendar(features):
    sunday = row(features, 1, 1)
    assert (sunday["year"], sunday["month"], sunday["day"], sunday["week_of_year"], sunday["day_of_year"],
            sunday["quarter"], sunday["day_of_week"], sunday["is_weekend"], sunday["is_month_start"],
            sunday["is_month_end"]) == (2015, 3, 1, 9, 60, 1, 7, True, True, False)
    assert row(features, 2, date(2015, 2, 28))["is_month_end"] is True
    assert row(features, 1, 2)["is_weekend"] is False and row(features, 1, 2)["week_of_year"] == 10


def test_state_holiday_distances_are_per_store_and_capped(features):
    assert [row(features, 1, d)["days_until_state_holiday"] for d in (1, 2, 3, 4)] == [2, 1, 0, 30]
    assert [row(features, 1, d)["days_since_state_holiday"] for d in (1, 3, 4, 10)] == [30, 0, 1, 7]
    assert row(features, 1, 3)["is_state_holiday"] is True
    assert row(features, 2, 1)["days_until_state_holiday"] == 30  # store 1's holiday is not store 2's


def test_promo2_follows_its_start_and_its_months(features):
    assert (row(features, 1, 1)["promo2_active"], row(features, 1, 1)["weeks_since_promo2_start"]) == (False, None)
    assert (row(features, 1, 2)["promo2_active"], row(features, 1, 2)["weeks_since_promo2_start"]) == (True, 0)
    assert (row(features, 1, 9)["promo2_active"], row(features, 1, 9)["weeks_since_promo2_start"]) == (True, 1)
    # store 2 started 2012-12-31, 790 days before 2015-03-01; March is not one of its months
    assert (row(features, 2, 1)["promo2_active"], row(features, 2, 1)["weeks_since_promo2_start"]) == (False, 112)


def test_competition(features):
    assert (row(features, 1, 1)["competition_open"], row(features, 1, 1)["months_since_competition_open"]) == (True, 1)
    assert (row(features, 2, 1)["competition_open"], row(features, 2, 1)["months_since_competition_open"]) == (False, 0)
    assert row(features, 1, 1)["log_competition_distance"] == pytest.approx(math.log(101))
    assert row(features, 2, 1)["log_competition_distance"] == 0.0


def test_the_recompute_window_covers_every_row_a_changed_day_can_affect():
    day = date(2015, 3, 10)
    targets = affected_dates([day])
    assert targets[0] == day - timedelta(days=30) and targets[-1] == day + timedelta(days=30)
    first, last = input_range(targets[0], targets[-1])
    assert first == day - timedelta(days=60) and last == day + timedelta(days=60)


def test_the_days_before_a_change_are_recomputed_only_when_its_state_holidays_changed():
    day = date(2015, 3, 10)
    assert affected_dates([day], holidays_changed=[]) == [day + timedelta(days=k) for k in range(31)]
    assert affected_dates([day], holidays_changed=[day]) == affected_dates([day])
    assert affected_dates([day, day + timedelta(days=40)], holidays_changed=[day + timedelta(days=40)])[:2] == [
        day, day + timedelta(days=1)]  # nothing before the day without a holiday ...
    assert day + timedelta(days=10) in affected_dates([day, day + timedelta(days=40)], [day + timedelta(days=40)])


def test_kept_rows_see_their_context_rows_without_becoming_them(features):
    """Row-local features are computed only on kept rows; lags, windows and holidays still see the rest."""
    kept_days = [date(2015, 3, 7), date(2015, 3, 8), date(2015, 3, 10)]
    out = build_features(cleaned_rows(), keep=pl.col("date").is_in(kept_days)).collect()
    kept = {(r["store"], r["date"]): r for r in out.to_dicts()}
    assert set(kept) == {(1, d) for d in kept_days}
    assert all(r == features[key] for key, r in kept.items())
    assert row(kept, 1, 7)["sales_lag_1"] == 60  # March 6th, a context row
    assert row(kept, 1, 7)["days_since_state_holiday"] == 4  # March 3rd, a context row
    assert row(kept, 1, 10)["sales_mean_7d"] == pytest.approx(statistics.mean([30, 40, 60, 70, 80, 90]))


def test_a_store_never_sees_the_rows_of_the_store_before_it_nor_days_across_a_long_gap(features):
    # store 2's first day comes right after store 1's last rows in (store, date) order
    first = row(features, 2, date(2015, 2, 28))
    assert first["sales_lag_1"] is None and first["sales_lag_7"] is None
    assert first["sales_mean_7d"] is None and first["sales_mean_28d"] is None
    # store 3: a row on March 1st, then none until March 9th and 10th
    rows = cleaned_rows().collect()
    store_3 = rows.filter(pl.col("store") == 1, pl.col("date").is_in([date(2015, 3, 1), date(2015, 3, 9),
                                                                      date(2015, 3, 10)]))
    out = build_features(pl.concat([rows, store_3.with_columns(store=pl.lit(3, pl.Int64))]).lazy()).collect()
    by_day = {r["date"].day: r for r in out.filter(pl.col("store") == 3).to_dicts()}
    assert sorted(by_day) == [1, 9, 10]  # the empty days of the gap never become rows
    assert by_day[9]["sales_lag_1"] is None and by_day[9]["sales_lag_7"] is None
    assert by_day[9]["sales_mean_7d"] is None  # March 2nd..8th: no row
    assert by_day[9]["sales_mean_28d"] == 10  # March 1st
    assert by_day[10]["sales_lag_1"] == 90 and by_day[10]["sales_mean_7d"] == 90
    assert by_day[10]["sales_std_28d"] == pytest.approx(statistics.stdev([10, 90]))


def test_a_state_holiday_never_reaches_the_store_before_or_after_it():
    # in (store, date) order store 9's days follow store 8's holiday and precede store 10's:
    # a distance taken across stores would be negative (Feb 28th - Mar 10th, Feb 1st - Mar 1st)
    rows = cleaned_rows().collect()
    store_1, store_2 = rows.filter(pl.col("store") == 1), rows.filter(pl.col("store") == 2)

    def holiday_on(day):  # of the rows before the change of date
        return pl.when(pl.col("date") == day).then(pl.lit("a")).otherwise(pl.lit("0"))

    stores = [
        store_1.with_columns(store=pl.lit(8, pl.Int64), state_holiday=holiday_on(date(2015, 3, 10))),
        store_2.with_columns(store=pl.lit(9, pl.Int64), state_holiday=pl.lit("0")),
        store_2.with_columns(store=pl.lit(10, pl.Int64), date=pl.col("date") - timedelta(days=27),
                             state_holiday=holiday_on(date(2015, 2, 28))),
    ]
    out = build_features(pl.concat(stores).lazy()).collect()
    store_9 = out.filter(pl.col("store") == 9)
    assert store_9["days_since_state_holiday"].to_list() == [30, 30]
    assert store_9["days_until_state_holiday"].to_list() == [30, 30]
    assert out.filter(pl.col("store") == 8, pl.col("date") == date(2015, 3, 9))["days_until_state_holiday"].item() == 1
    assert out.filter(pl.col("store") == 10)["days_since_state_holiday"].to_list() == [0, 1]
