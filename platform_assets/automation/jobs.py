"""Named jobs for the usual manual actions, next to what automation does by itself."""

import dagster as dg

# Selecting an asset selects its checks too, so both jobs run the Soda contracts of what they build.
DOWNSTREAM = dg.AssetSelection.groups("cleaned", "features")

incremental_update = dg.define_asset_job(
    "incremental_update",
    selection=DOWNSTREAM,
    description="Recompute cleaned and features for what landed since their last run, with their checks.",
)

full_rebuild = dg.define_asset_job(
    "full_rebuild",
    selection=DOWNSTREAM,
    description="Recompute cleaned and features from all of raw (e.g. after a change to the cleaning rules).",
    config={"ops": {name: {"config": {"full_rebuild": True}} for name in ("cleaned__sales", "features__sales_features")}},
)
