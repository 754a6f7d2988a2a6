"""The forecast model: trained on generated features, beats the naive baseline, retrains only on change."""

from datetime import date, timedelta

import dagster as dg
import joblib
import polars as pl
import pytest

from platform_assets import forecasting
from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.assets.model import sales_forecast
from platform_assets_tests.conftest import raw_sales, raw_stores
from platform_assets.automation.conditions import model_retraining, with_automation
from platform_assets.sample_data.generator import DEFAULT_SEED, RossmannGenerator
from platform_assets.sample_data.land import land
from platform_assets.settings import Settings
from platform_assets.transforms import cleaning
from platform_assets.transforms import features as transforms_features

ASSETS = with_automation([raw_stores, raw_sales, cleaned_sales, sales_features, sales_forecast])


@pytest.fixture
def features_built(data_dir, load, resources, instance):
    """150 generated days (Nov 2014 .. Mar 2015) through raw, cleaned and features."""
    (stores, sales) = land(data_dir, batch="all", first=date(2014, 11, 1), days=150)
    assert load().success and load(sales.path.name).success
    assert dg.materialize([cleaned_sales, sales_features], resources=resources, instance=instance).success


def test_the_model_trains_beats_the_naive_baseline_and_is_saved(features_built, resources, instance, data_dir):
    result = dg.materialize([sales_forecast], resources=resources, instance=instance)
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert {"rmspe", "mae", "baseline_rmspe", "baseline_mae", "train_rows", "holdout_rows"} <= metadata.keys()
    assert metadata["holdout_rows"] > 30_000 and metadata["train_rows"] > 70_000
    assert metadata["rmspe"] < metadata["baseline_rmspe"]
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("beats_naive_baseline", True)

    artifact = joblib.load(metadata["artifact"])
    assert metadata["artifact"].startswith(str(data_dir / "models"))
    assert artifact["features_data_version"] in metadata["artifact"]
    assert artifact["features_data_version"] == instance.get_latest_materialization_event(
        sales_features.key).asset_materialization.metadata["data_version"].value
    assert artifact["metrics"]["rmspe"] == pytest.approx(metadata["rmspe"], abs=1e-4)


def test_the_model_retrains_when_features_change_and_not_otherwise(features_built, resources, instance):
    defs = dg.Definitions(assets=ASSETS, resources=resources)
    cursor = None

    def requested() -> set[str]:
        nonlocal cursor
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        return {a.key.to_user_string() for a in ASSETS if result.get_num_requested(a.key)}

    requested()  # the sensor's first tick
    assert dg.materialize([sales_features], resources=resources, instance=instance).success
    assert requested() == {"model/sales_forecast"}
    assert dg.materialize([sales_forecast], resources=resources, instance=instance).success
    assert requested() == set()  # features unchanged: no retrain
    assert requested() == set()
    assert dg.materialize([sales_features], resources=resources, instance=instance).success
    assert requested() == {"model/sales_forecast"}


def test_retraining_is_evaluated_at_most_once_per_configured_interval():
    assert model_retraining.minimum_interval_seconds == Settings.from_env().retrain_min_interval_seconds
    assert model_retraining.asset_selection.resolve(ASSETS) == {sales_forecast.key}


def generated_features(days: int) -> pl.DataFrame:
    """``days`` days of features of a small generated chain, from the pure transforms."""
    generator = RossmannGenerator(DEFAULT_SEED, 60)
    first = date(2014, 1, 1)
    sales = generator.sales(first, first + timedelta(days=days - 1)).with_columns(
        pl.col("Date").str.to_date(), _source_file=pl.lit("f.csv"),
        _landed_at=pl.lit(None, pl.Datetime("us", "UTC")), _loaded_at=pl.lit(None, pl.Datetime("us", "UTC")))
    cleaned = cleaning.clean_sales(sales.lazy(), generator.stores.frame.lazy())
    return transforms_features.build_features(cleaned).collect()


@pytest.mark.parametrize("days", [1, 43, 57, 70])
def test_too_little_history_says_what_it_needs_instead_of_a_library_error(days):
    with pytest.raises(forecasting.NotEnoughHistory) as raised:
        forecasting.train_and_evaluate(generated_features(days))
    assert (raised.value.needed, raised.value.available) == (71, days)
    assert "needs 71 consecutive days" in str(raised.value)
    assert "the feature table has " in str(raised.value) and "day(s) with data, from 2014-01-0" in str(raised.value)


def test_too_little_history_with_gaps_counts_the_days_with_data_not_the_calendar():
    """Ten days, then a gap, then nine: 19 days with data over 40 calendar days, and the message says both."""
    features = generated_features(40).filter(~pl.col("date").is_between(date(2014, 1, 11), date(2014, 1, 31)))
    with_data = features.filter(pl.col("is_open") & (pl.col("sales") > 0))["date"].n_unique()
    assert with_data >= 17  # (New Year's Day and a Sunday or two may have no open store)
    with pytest.raises(forecasting.NotEnoughHistory) as raised:
        forecasting.train_and_evaluate(features)
    assert (raised.value.available, raised.value.days_with_data) == (40, with_data)
    assert (f"the feature table has {with_data} day(s) with data, from " in str(raised.value)
            and "to 2014-02-09 (40 calendar day(s))" in str(raised.value))


def test_just_enough_history_trains():
    """71 days: 42 of holdout, 28 so that the first training day has its 28-day lag and window, 1 to train on."""
    forecast = forecasting.train_and_evaluate(generated_features(71))
    assert forecast.metrics["train_rows"] > 0 and forecast.metrics["holdout_rows"] > 0


def test_the_model_asset_fails_with_the_days_needed_and_available(data_dir, load, resources, instance):
    (stores, sales) = land(data_dir, batch="all", first=date(2014, 11, 1), days=50)
    assert load().success and load(sales.path.name).success
    assert dg.materialize([cleaned_sales, sales_features], resources=resources, instance=instance).success
    result = dg.materialize([sales_forecast], resources=resources, instance=instance, raise_on_error=False)
    error = result.failure_data_for_node("model__sales_forecast").error
    assert "not enough history to train the forecaster: it needs 71 consecutive days" in error.message
    assert "the feature table has 50 day(s) with data" in error.message and "Traceback" not in error.message
