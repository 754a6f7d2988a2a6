"""When downstream layers rebuild by themselves, and the sensor that evaluates it.

Like Dagster's ``eager()``, an asset runs after any upstream update, once nothing
upstream is in progress: a burst of landed files is absorbed into one downstream
run, and a layer whose parent is requested in the same tick joins that run. Three
changes fit it to this platform:

- it does not wait for *every* upstream partition to exist: a quarantined file
  leaves its ``raw/sales`` partition empty for good, which must not stop the flow;
  it waits only until every upstream asset has some data (the store master alone
  is nothing to clean: found by the soak);
- it stops the line while any upstream blocking check has failed (on any
  partition), until a corrected file is loaded and its checks pass, and
  waits while one is still running;
- an upstream update is compared by time with this asset's last request and update,
  so one that lands right after a downstream run is never taken as handled by it.
"""

import dagster as dg

from platform_assets.settings import Settings

AC = dg.AutomationCondition

# A check still running counts too: Dagster takes a partition as no longer in progress once it is
# materialized, while its run goes on to check it; a tick in between built cleaned from a batch about
# to fail (found in CI: an empty cleaned table failing its own check beside the batch's real failure).
upstream_check_failed = AC.any_deps_match(
    AC.any_checks_match(AC.check_failed() | AC.in_progress(), blocking_only=True)
).with_label("an upstream blocking check failed or has not finished")

every_upstream_has_data = AC.all_deps_match(~AC.missing() | AC.will_be_requested()).with_label(
    "every upstream asset has data (or gets it in this tick)")

# Like eager(), with one difference: eager() forgets an upstream update when this asset was also
# requested or updated within the same interval, even if the update came after (a file loaded
# between a downstream run and the next tick stayed out of cleaned and features until another one
# landed: found by `make bench-latency`). Here each comparison is by time (both sides of each
# `since` carry their timestamps): an upstream update newer than this asset's last request and
# newer than its last update. A downstream run that fails is not requested again until new data
# comes, as with eager().
upstream_updated = AC.any_deps_match(AC.newly_updated())
newer_upstream_data = (
    upstream_updated.since(AC.newly_requested()) & upstream_updated.since(AC.newly_updated())
).with_label("an upstream update newer than this asset's last request and update")

follow_upstream = (
    (newer_upstream_data | AC.any_deps_match(AC.will_be_requested()))
    & ~AC.any_deps_in_progress()
    & ~AC.in_progress()
    & every_upstream_has_data
    & ~upstream_check_failed
).with_label("follows upstream, stopped by failing upstream checks")

downstream_automation = dg.AutomationConditionSensorDefinition(
    "downstream_automation",
    target=dg.AssetSelection.all() - dg.AssetSelection.groups("model"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=Settings.from_env().automation_interval_seconds,
    description="Materializes cleaned and feature layers after new raw data passes its checks.",
)

model_retraining = dg.AutomationConditionSensorDefinition(
    "model_retraining",
    target=dg.AssetSelection.groups("model"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    # evaluated at most this often, so feature updates in between give one retrain, not many
    minimum_interval_seconds=Settings.from_env().retrain_min_interval_seconds,
    description="Retrains the forecast model after the features change, at most once per interval.",
)


def with_automation(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Assets downstream of raw follow upstream by themselves; raw is driven by the landing sensor."""
    return [
        a if a.group_names_by_key[a.key] == "raw"
        else dg.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=follow_upstream), [a])[0]
        for a in assets
    ]
