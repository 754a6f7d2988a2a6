"""The sales forecaster: train on features, evaluate on a time-based holdout. Pure, no I/O.

A small, honest model: scikit-learn's HistGradientBoostingRegressor on log
sales of open days, judged by RMSPE (the Rossmann competition metric) and MAE
on the last six weeks, against the naive forecast "same weekday last week".
"""

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from platform_assets.transforms.features import LAGS, WINDOWS

# OpenMP threads that wait by sleeping, not spinning (set before scikit-learn loads OpenMP): on a
# machine busy with other runs, spinning made one training 35x slower (218 s instead of 6 s under
# one CPU hog, measured in a `dagster dev` run); idle, it costs 0.7 s of 2.7. An operator's own
# OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:  # scikit-learn costs 1.3 s to import: only the training step pays for it
    from sklearn.ensemble import HistGradientBoostingRegressor

HOLDOUT_DAYS = 42
TRAIN_DAYS = 180  # a longer window trained 4x slower on 2 cores for the same holdout RMSPE
TARGET = "sales"
CATEGORIES = {"store_type": list("abcd"), "assortment": list("abc"), "state_holiday": ["0", "a", "b", "c"]}
# Columns a forecast made the day before could not know, or that are not features.
EXCLUDED = {"sales", "customers", "date", "is_open", "_updated_at"}
# The first training day needs this many days before it, or its longest lag and window are empty
# (and scikit-learn cannot bin a feature without a single value).
LOOKBACK_DAYS = max(*LAGS, *WINDOWS)
MIN_DAYS = HOLDOUT_DAYS + LOOKBACK_DAYS + 1


class NotEnoughHistory(ValueError):
    """Too few days of features to train and hold out; the message says how many are needed and available."""

    def __init__(self, rows: pl.DataFrame, detail: str = ""):
        days = rows["date"].unique() if rows.height else pl.Series([], dtype=pl.Date)
        # ``available``: the calendar days from the first to the last day with data (lags need them all)
        self.needed, self.days_with_data = MIN_DAYS, days.len()
        self.available = (days.max() - days.min()).days + 1 if days.len() else 0
        found = "no day with data" if not days.len() else (
            f"{self.days_with_data} day(s) with data, from {days.min()} to {days.max()} "
            f"({self.available} calendar day(s))")
        super().__init__(
            f"not enough history to train the forecaster: it needs {MIN_DAYS} consecutive days of open-store "
            f"features ({HOLDOUT_DAYS} days of holdout, {LOOKBACK_DAYS} days before the first training day for the "
            f"longest lag and window, 1 day to train on); the feature table has {found}{detail}")


@dataclass(frozen=True)
class Forecast:
    model: "HistGradientBoostingRegressor"
    features: list[str]
    metrics: dict[str, float]


def training_window(last_date) -> tuple:
    """The dates the model needs: TRAIN_DAYS of training before HOLDOUT_DAYS of holdout."""
    return last_date - timedelta(days=TRAIN_DAYS + HOLDOUT_DAYS - 1), last_date


def train_and_evaluate(features: pl.DataFrame, seed: int = 0) -> Forecast:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rows = features.filter(pl.col("is_open") & (pl.col(TARGET) > 0))
    available = (rows["date"].max() - rows["date"].min()).days + 1 if rows.height else 0
    if available < MIN_DAYS:
        raise NotEnoughHistory(rows)
    cutoff = rows["date"].max() - timedelta(days=HOLDOUT_DAYS - 1)
    train, holdout = rows.filter(pl.col("date") < cutoff), rows.filter(pl.col("date") >= cutoff)
    columns = [c for c in rows.columns if c not in EXCLUDED]
    empty = [c for c in columns if train[c].null_count() == train.height]
    if empty:  # days enough, but gaps in them: say so instead of scikit-learn's binning error
        raise NotEnoughHistory(rows, f", and in its training days {', '.join(empty)} have no value")
    model = HistGradientBoostingRegressor(max_iter=150, learning_rate=0.15, max_leaf_nodes=31,
                                          early_stopping=False, random_state=seed)
    model.fit(_matrix(train, columns), np.log1p(train[TARGET].to_numpy()))
    predicted = np.expm1(model.predict(_matrix(holdout, columns)))
    actual = holdout[TARGET].to_numpy().astype(float)
    # the naive forecast exists where the store has a sale on the same weekday a week before
    naive = holdout["sales_lag_7"].cast(pl.Float64).to_numpy()
    comparable = ~np.isnan(naive) & (naive > 0)
    return Forecast(model, columns, {
        "rmspe": _rmspe(actual[comparable], predicted[comparable]),
        "mae": float(np.mean(np.abs(actual[comparable] - predicted[comparable]))),
        "baseline_rmspe": _rmspe(actual[comparable], naive[comparable]),
        "baseline_mae": float(np.mean(np.abs(actual[comparable] - naive[comparable]))),
        "rmspe_all_holdout_rows": _rmspe(actual, predicted),
        "train_rows": train.height,
        "holdout_rows": holdout.height,
        "compared_rows": int(comparable.sum()),
    })


def _matrix(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    encoded = frame.select(
        [pl.col(c).replace_strict(v, list(range(len(v))), default=None).cast(pl.Float64).alias(c)
         if (v := CATEGORIES.get(c)) else pl.col(c).cast(pl.Float64) for c in columns]
    )
    return encoded.to_numpy()


def _rmspe(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((actual - predicted) / actual) ** 2)))
