"""The one Definitions object of the code location: the declared datasets and the Python layers over them."""

import dagster as dg

from platform_assets import execution
from platform_assets.alerts.sensor import alert_sensor
from platform_assets.assets.config import DAILY_LAYERS
from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.assets.model import sales_forecast
from platform_assets.automation.conditions import downstream_automation, model_retraining, with_automation
from platform_assets.automation.freshness import with_freshness
from platform_assets.automation.jobs import layer_jobs
from platform_assets.automation.landing_sensor import landing_sensor
from platform_assets.automation.maintenance import nightly_lake_maintenance, lake_maintenance
from platform_assets.automation.recheck_sensor import recheck_sensor
from platform_assets.datasets import load_datasets
from platform_assets.quality.soda_checks import contract_checks
from platform_assets.resources import LandingZone, ModelStore, Warehouse
from platform_assets.settings import Settings

settings = Settings.from_env()
datasets = load_datasets()
landed_assets, landed_checks = datasets.assets_and_checks()  # a raw asset, its checks, per defs/<dataset>/
layers = with_freshness(with_automation([cleaned_sales, sales_features, sales_forecast]), settings.freshness_hours)
assets = [*landed_assets, *layers]
checks = [*landed_checks, *contract_checks(settings.contracts_dir, assets)]


def built_on(key: dg.AssetKey) -> list[dg.AssetKey]:
    """What a lone landed file is carried through in its own run: the cleaned and feature layers built on it."""
    found, frontier = [], {key}
    while frontier:
        frontier = {a.key for a in layers if a.dependency_keys & frontier and a.key not in found}
        found += sorted(frontier, key=str)
    return [k for k in found if k.path[0] in DAILY_LAYERS]



built_on_datasets = {d.asset_key: built_on(d.asset_key) for d in datasets.all}
incremental_update, full_rebuild = layer_jobs(layers)

defs = dg.Definitions(
    assets=assets,
    asset_checks=checks,
    jobs=[incremental_update, full_rebuild, lake_maintenance],
    schedules=[nightly_lake_maintenance],
    sensors=[landing_sensor(datasets, built_on_datasets),
             recheck_sensor(datasets, checks, built_on_datasets, incremental_update), downstream_automation,
             model_retraining, alert_sensor],
    executor=execution.executor(),  # in the run's process, or on Celery workers (the cluster profile)
    resources={
        "warehouse": Warehouse.from_settings(settings),
        "landing": LandingZone.from_settings(settings),
        "models": ModelStore(models_dir=str(settings.models_dir)),
    },
)
