"""How fresh the daily layers must be: Dagster's FreshnessPolicy, shown in the UI and watched by its daemon.

A landed dataset says its own window in its ``defs.yaml`` (``freshness_hours``; sales
files land once a day). The layers built on daily data, cleaned and features sales,
are stale when not updated for ``PLATFORM_FRESHNESS_HOURS`` (26 h: a day plus a
margin for a late file); the model retrains only after the features change and has
no window of its own. The daemon records each change of state as an event; the alert
sensor turns those into messages.
"""

from datetime import timedelta

import dagster as dg

from platform_assets.assets.config import DAILY_LAYERS


def with_freshness(assets: list[dg.AssetsDefinition], hours: float) -> list[dg.AssetsDefinition]:
    """The cleaned and feature layers' assets with the daily window; the others as they are."""
    policy = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=hours))
    return [
        dg.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=policy), [a])[0]
        if a.group_names_by_key[a.key] in DAILY_LAYERS else a
        for a in assets
    ]
