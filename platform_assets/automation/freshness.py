"""How fresh the daily layers must be: Dagster's FreshnessPolicy, shown in the UI and watched by its daemon.

Sales files land once a day, so raw, cleaned and features sales are stale when not
updated for ``PLATFORM_FRESHNESS_HOURS`` (26 h: a day plus a margin for a late
file). The store master changes rarely and the model retrains only after the
features change: neither has a window of its own. The daemon records each change
of state as an event; the alert sensor turns those into messages.
"""

from datetime import timedelta

import dagster as dg

from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.assets.raw import raw_sales

DAILY = {raw_sales.key, cleaned_sales.key, sales_features.key}


def with_freshness(assets: list[dg.AssetsDefinition], hours: float) -> list[dg.AssetsDefinition]:
    policy = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=hours))
    return [
        dg.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=policy), [a])[0]
        if a.key in DAILY else a
        for a in assets
    ]
