"""The one Definitions object of the code location."""

import dagster as dg

from platform_assets.alerts.sensor import alert_sensor
from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.assets.model import sales_forecast
from platform_assets.assets.raw import raw_sales, raw_stores
from platform_assets.automation.conditions import downstream_automation, model_retraining, with_automation
from platform_assets.automation.freshness import with_freshness
from platform_assets.automation.jobs import full_rebuild, incremental_update
from platform_assets.automation.landing_sensor import landing_sensor
from platform_assets.automation.maintenance import nightly_lake_maintenance, lake_maintenance
from platform_assets.automation.recheck_sensor import recheck_sensor, sales_contract_of
from platform_assets.quality.soda_checks import contract_checks
from platform_assets.resources import LandingZone, ModelStore, Warehouse
from platform_assets.settings import Settings

settings = Settings.from_env()
assets = with_freshness(with_automation([raw_stores, raw_sales, cleaned_sales, sales_features, sales_forecast]),
                        settings.freshness_hours)
checks = contract_checks(settings.contracts_dir, assets)

defs = dg.Definitions(
    assets=assets,
    asset_checks=checks,
    jobs=[incremental_update, full_rebuild, lake_maintenance],
    schedules=[nightly_lake_maintenance],
    sensors=[landing_sensor, recheck_sensor(sales_contract_of(checks)), downstream_automation, model_retraining,
             alert_sensor],
    # Steps of a run share one process: its steps run one after another (each layer needs the one
    # before), and a process per step cost ~3.5 s of start-up each (measured in the end-to-end test).
    executor=dg.in_process_executor,
    resources={
        "warehouse": Warehouse.from_settings(settings),
        "landing": LandingZone(data_dir=str(settings.data_dir)),
        "models": ModelStore(models_dir=str(settings.models_dir)),
    },
)
