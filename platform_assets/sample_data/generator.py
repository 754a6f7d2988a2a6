"""Deterministic Rossmann-shaped data: the real files cannot be downloaded here.

Reproduces the schema, the quirks and the exact counts of the Kaggle
"Rossmann Store Sales" files (1,115 stores, 2013-01-01..2015-07-31,
1,017,209 sales rows) with a plausible signal: weekly and yearly seasonality,
Sunday closures, promo uplift, holidays and store-type effects.

Every day draws from its own random stream (seed, day), so a day's rows are the
same whether it is generated alone, in a week or in the whole history, and
days after 2015-07-31 continue the series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

import numpy as np
import polars as pl
from dateutil.easter import easter

from platform_assets.sample_data.rossmann import SALES_COLUMNS, STORE_COLUMNS, WEATHER_COLUMNS

N_STORES = 1115
HISTORY_START = date(2013, 1, 1)
HISTORY_END = date(2015, 7, 31)
# The real history has no rows for 180 stores over the second half of 2014 ...
GAP_STORES = 180
GAP_START, GAP_END = date(2014, 7, 1), date(2014, 12, 31)
# ... and one store misses one single day.
MISSING_DAY = date(2013, 1, 1)

DEFAULT_SEED = 42
N_STATES = 12
# the 12 German states of the real store_states file, and how much warmer each runs than the average
STATES = ("BE", "BW", "BY", "HB", "HE", "HH", "NI", "NW", "RP", "SH", "SN", "TH")
STATE_WARMTH = np.array([0.5, 1.2, 0.4, 0.2, 0.9, 0.1, 0.3, 0.8, 1.1, -0.3, -0.2, -0.6])
STORE_TYPE_COUNTS = {"a": 602, "b": 17, "c": 148, "d": 348}
PROMO_INTERVALS = ("Jan,Apr,Jul,Oct", "Feb,May,Aug,Nov", "Mar,Jun,Sept,Dec")

# Relative turnover by ISO weekday (Mon..Sun): Monday peak, quiet Saturday.
WEEKDAY_FACTOR = np.array([1.22, 1.02, 0.97, 0.95, 1.00, 0.86, 0.90])
BASE_SALES = {"a": 6900.0, "b": 10200.0, "c": 6950.0, "d": 6800.0}
BASKET = {"a": 8.8, "b": 5.1, "c": 8.6, "d": 11.3}  # turnover per customer
PROMO_UPLIFT = 1.28


@dataclass(frozen=True)
class StoreMaster:
    """Per-store attributes, public (the store file) and hidden (the signal)."""

    frame: pl.DataFrame
    state: np.ndarray
    base_sales: np.ndarray
    basket: np.ndarray
    opens_sundays: np.ndarray
    opens_on_public_holidays: np.ndarray
    gap_stores: np.ndarray
    missing_day_store: int


class RossmannGenerator:
    """Generates the store master and any range of sales days from one seed.

    ``n_stores`` scales the chain (benchmarks use 4x): store types and the 2014
    gap keep their shares; the default reproduces the real file's 1,115 stores.
    """

    def __init__(self, seed: int = DEFAULT_SEED, n_stores: int = N_STORES) -> None:
        if n_stores < len(STORE_TYPE_COUNTS) + 1:
            raise ValueError(f"n_stores must be at least {len(STORE_TYPE_COUNTS) + 1}, got {n_stores}")
        self.seed = seed
        self.n_stores = n_stores

    @cached_property
    def stores(self) -> StoreMaster:
        n = self.n_stores
        rng = np.random.default_rng([self.seed, 0])
        store_ids = np.arange(1, n + 1)
        type_counts = [round(count * n / N_STORES) for count in STORE_TYPE_COUNTS.values()]
        type_counts[0] += n - sum(type_counts)  # rounding goes to the commonest type
        store_type = rng.permutation(np.repeat(list(STORE_TYPE_COUNTS), type_counts))
        is_b = store_type == "b"
        assortment = np.where(rng.random(n) < 0.47, "c", "a")
        assortment[np.flatnonzero(is_b)[:9]] = "b"

        distance = np.clip(np.round(rng.lognormal(7.7, 1.15, n) / 10) * 10, 20, 75860)
        distance_missing = np.zeros(n, bool)
        distance_missing[rng.choice(n, 3, replace=False)] = True
        competition_known = (rng.random(n) > 0.32) & ~distance_missing
        comp_year = rng.choice(np.arange(1990, 2016), n, p=_tail_weights(26))
        comp_month = rng.integers(1, 13, n)

        promo2 = rng.random(n) < 0.512
        promo2_year = rng.integers(2009, 2016, n)
        promo2_week = rng.integers(1, 51, n)
        promo_interval = np.array(PROMO_INTERVALS)[rng.choice(3, n, p=[0.58, 0.23, 0.19])]

        frame = pl.DataFrame(
            {
                "Store": store_ids,
                "StoreType": store_type,
                "Assortment": assortment,
                "CompetitionDistance": _nullable(distance.astype(np.int64), ~distance_missing),
                "CompetitionOpenSinceMonth": _nullable(comp_month, competition_known),
                "CompetitionOpenSinceYear": _nullable(comp_year, competition_known),
                "Promo2": promo2.astype(np.int64),
                "Promo2SinceWeek": _nullable(promo2_week, promo2),
                "Promo2SinceYear": _nullable(promo2_year, promo2),
                "PromoInterval": _nullable(promo_interval, promo2),
            }
        ).select(STORE_COLUMNS)

        type_base = np.vectorize(BASE_SALES.get)(store_type)
        gap_stores = round(GAP_STORES * n / N_STORES)
        gap_and_missing = rng.choice(n, gap_stores + 1, replace=False)
        return StoreMaster(
            frame=frame,
            state=rng.integers(0, N_STATES, n),
            base_sales=type_base * rng.lognormal(0.0, 0.32, n),
            basket=np.vectorize(BASKET.get)(store_type) * rng.lognormal(0.0, 0.08, n),
            opens_sundays=is_b | (rng.random(n) < 0.015),
            opens_on_public_holidays=rng.random(n) < 0.08,
            gap_stores=np.sort(gap_and_missing[:gap_stores]),
            missing_day_store=int(gap_and_missing[gap_stores]),
        )

    def sales(self, first: date, last: date) -> pl.DataFrame:
        """Sales rows for every day in [first, last], newest day first like the real file."""
        if last < first:
            raise ValueError(f"empty date range: {first} .. {last}")
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        frames = [self._day(day) for day in reversed(days)]
        return pl.concat(frames)

    def _day(self, day: date) -> pl.DataFrame:
        master = self.stores
        rng = np.random.default_rng([self.seed, 1, day.toordinal()])
        weekday = day.isoweekday()
        holiday = _state_holidays(day, master.state)
        school = _school_holidays(day, master.state)
        promo = weekday <= 5 and ((day.toordinal() - 1) // 7) % 2 == 0

        closed = (weekday == 7) & ~master.opens_sundays
        closed |= (holiday == "a") & ~master.opens_on_public_holidays
        closed |= np.isin(holiday, ["b", "c"])
        closed |= rng.random(self.n_stores) < 0.003  # refurbishments, strikes, floods
        is_open = ~closed

        level = (
            master.base_sales
            * WEEKDAY_FACTOR[weekday - 1]
            * _yearly_season(day)
            * (1.0 + 0.025 * (day.year - 2013))
            * (PROMO_UPLIFT if promo else 1.0)
            * np.where(school, 1.03, 1.0)
            * rng.lognormal(0.0, 0.11, self.n_stores)
        )
        sales = np.where(is_open, np.round(level), 0).astype(np.int64)
        customers = np.where(
            is_open, np.round(level / master.basket * rng.lognormal(0.0, 0.05, self.n_stores)), 0
        ).astype(np.int64)
        # The real data has a handful of open days with no sales at all.
        zero_sales = is_open & (rng.random(self.n_stores) < 0.00006)
        sales[zero_sales] = 0
        customers[zero_sales] = 0

        keep = np.ones(self.n_stores, bool)
        if GAP_START <= day <= GAP_END:
            keep[master.gap_stores] = False
        if day == MISSING_DAY:
            keep[master.missing_day_store] = False

        # Quirk: the real StateHoliday column mixes the number 0 and the string "0".
        no_holiday = '"0"' if day.year == 2013 else "0"
        return pl.DataFrame(
            {
                "Store": np.arange(1, self.n_stores + 1)[keep],
                "DayOfWeek": np.full(keep.sum(), weekday),
                "Date": np.full(keep.sum(), day.isoformat()),
                "Sales": sales[keep],
                "Customers": customers[keep],
                "Open": is_open[keep].astype(np.int64),
                "Promo": np.full(keep.sum(), int(promo)),
                "StateHoliday": np.where(holiday == "0", no_holiday, holiday)[keep],
                "SchoolHoliday": school[keep].astype(np.int64),
            }
        ).select(SALES_COLUMNS)


class WeatherGenerator:
    """The third feed: which state each store is in, and the daily weather of the 12 states.

    Deterministic like the sales (one random stream per day), and consistent with them:
    a store's state is the one its holidays follow.
    """

    def __init__(self, stores: StoreMaster, seed: int = DEFAULT_SEED) -> None:
        self.master, self.seed = stores, seed

    @property
    def store_states(self) -> pl.DataFrame:
        return pl.DataFrame({"Store": self.master.frame["Store"], "State": np.array(STATES)[self.master.state]})

    def weather(self, first: date, last: date) -> pl.DataFrame:
        """One row per state and day: temperatures in whole degrees, precipitation in mm, events."""
        frames = []
        day = first
        while day <= last:
            rng = np.random.default_rng([self.seed, 2, day.toordinal()])
            season = 9.5 + 9.0 * np.sin(2 * np.pi * (day.timetuple().tm_yday - 110) / 365.25)
            mean = season + STATE_WARMTH + rng.normal(0, 2.5, N_STATES)
            spread_up, spread_down = rng.uniform(2, 7, N_STATES), rng.uniform(2, 7, N_STATES)
            wet = rng.random(N_STATES) < 0.45
            rain = np.where(wet, np.round(rng.gamma(0.8, 3.5, N_STATES), 1), 0.0)
            events = np.where(rain > 1, np.where(mean < 1, "Snow", "Rain"), "")
            events = np.where((rain > 8) & (mean > 15), "Rain-Thunderstorm", events)
            frames.append(pl.DataFrame({
                "State": STATES, "Date": [day.isoformat()] * N_STATES,
                "MaxTemperatureC": np.round(mean + spread_up).astype(np.int64),
                "MeanTemperatureC": np.round(mean).astype(np.int64),
                "MinTemperatureC": np.round(mean - spread_down).astype(np.int64),
                "PrecipitationMm": rain,
                "Events": pl.Series(events).replace("", None),
            }))
            day += timedelta(days=1)
        return pl.concat(frames).select(WEATHER_COLUMNS)


def write_stores_csv(frame: pl.DataFrame, path) -> None:
    frame.write_csv(path, quote_style="necessary")


def write_sales_csv(frame: pl.DataFrame, path) -> None:
    # quote_style="never" keeps the literal `"0"` quirk exactly as generated.
    frame.write_csv(path, quote_style="never")


def _nullable(values: np.ndarray, present: np.ndarray) -> pl.Series:
    return pl.Series(values).zip_with(pl.Series(present), pl.Series([None] * len(values)))


def _tail_weights(n: int) -> np.ndarray:
    """More recent competition openings are more common."""
    w = np.linspace(0.3, 2.0, n)
    return w / w.sum()


def _yearly_season(day: date) -> float:
    doy = day.timetuple().tm_yday
    season = 1.0 + 0.05 * np.cos(2 * np.pi * (doy - 15) / 365.25)
    if day.month == 12 and day.day <= 24:
        season *= 1.18 + 0.012 * day.day  # Christmas shopping
    if day.month == 1 and day.day <= 10:
        season *= 0.9  # January lull
    return float(season)


def _state_holidays(day: date, state: np.ndarray) -> np.ndarray:
    """'a' public, 'b' Easter, 'c' Christmas, '0' none; some holidays are regional."""
    e = easter(day.year)
    national = {
        date(day.year, 1, 1): "a",
        e - timedelta(days=2): "b",
        e + timedelta(days=1): "b",
        date(day.year, 5, 1): "a",
        e + timedelta(days=39): "a",
        e + timedelta(days=50): "a",
        date(day.year, 10, 3): "a",
        date(day.year, 12, 25): "c",
        date(day.year, 12, 26): "c",
    }
    regional = {
        date(day.year, 1, 6): state < 3,
        e + timedelta(days=60): state < 6,
        date(day.year, 8, 15): state == 0,
        date(day.year, 10, 31): (state >= 6) & (state < 10),
        date(day.year, 11, 1): state < 5,
    }
    out = np.full(len(state), "0", dtype="<U1")
    if day in national:
        out[:] = national[day]
    elif day in regional:
        out[regional[day]] = "a"
    return out


def _school_holidays(day: date, state: np.ndarray) -> np.ndarray:
    """Each state has its own summer and autumn windows; Easter and Christmas breaks."""
    e = easter(day.year)
    per_state = np.array([_school_holiday_in_state(day, s, e) for s in range(N_STATES)])
    return per_state[state]


def _school_holiday_in_state(day: date, state: int, easter_day: date) -> bool:
    summer = date(day.year, 6, 20) + timedelta(weeks=(state * 5) % 9)
    autumn = date(day.year, 10, 5) + timedelta(weeks=state % 3)
    return (
        summer <= day < summer + timedelta(weeks=6)
        or autumn <= day < autumn + timedelta(days=12)
        or abs((day - easter_day).days) <= 7
        or (day.month == 12 and day.day >= 22)
        or (day.month == 1 and day.day <= 6)
    )
