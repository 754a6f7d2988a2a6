"""When downstream layers rebuild by themselves, and the sensor that evaluates it.

One rule holds the line, whatever the timing: a verified batch flows, an unverified
one does not. A batch (one ``raw/sales`` partition, one landed file) is verified when
its blocking checks pass; ``cleaned/sales`` reads verified batches only, and leaves
the dates an unverified batch would change as they are until it is verified
(``assets/cleaned.py``). So a bad file never holds up the good files landed beside
it, before or after it, in a burst or alone; it only holds its own rows.

Like Dagster's ``eager()``, an asset runs after any upstream update, once nothing
upstream is in progress: a burst of landed files is absorbed into one downstream
run, and a layer whose parent is requested in the same tick joins that run. It differs:

- it runs once every upstream asset has *verified* data: some batch of a partitioned
  one (a quarantined file leaves its partition empty for good, a failed one unverified;
  neither stops the others), all of an unpartitioned one (an unverified store master,
  or a cleaned table whose own blocking check failed, stops the layers below it);
- it waits while an upstream blocking check is still running: Dagster counts a partition
  as done once it is materialized, and a tick before its checks gave their verdict would
  leave the batch out (found in CI);
- an upstream update is compared by time with this asset's last request and update,
  so one that lands right after a downstream run is never taken as handled by it.
"""

import dagster as dg

from platform_assets.settings import Settings

AC = dg.AutomationCondition

upstream_checks_running = AC.any_deps_match(
    AC.any_checks_match(AC.in_progress(), blocking_only=True)
).with_label("an upstream blocking check has not finished")

every_upstream_verified = AC.all_deps_match(
    AC.all_checks_match(AC.check_passed(), blocking_only=True) | AC.will_be_requested()
).with_label("every upstream asset has verified data (or gets data in this tick)")

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
    & every_upstream_verified
    & ~upstream_checks_running
).with_label("follows upstream: verified batches flow")

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
