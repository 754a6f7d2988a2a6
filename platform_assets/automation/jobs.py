"""Named jobs for the usual manual actions, next to what automation does by itself."""

import dagster as dg

from platform_assets.assets.config import DAILY_LAYERS

# Selecting an asset selects its checks too, so both jobs run the Soda contracts of what they build.
DOWNSTREAM = dg.AssetSelection.groups(*DAILY_LAYERS)


def layer_jobs(layers: list[dg.AssetsDefinition]) -> list:
    """Recompute the incremental layers (cleaned and features): what landed since, or everything."""
    rebuilt = [a for a in layers if a.group_names_by_key[a.key] in DAILY_LAYERS]
    return [
        dg.define_asset_job(
            "incremental_update",
            selection=DOWNSTREAM,
            description="Recompute cleaned and features for what landed since their last run, with their checks.",
        ),
        dg.define_asset_job(
            "full_rebuild",
            selection=DOWNSTREAM,
            description="Recompute cleaned and features from all of raw (e.g. after a change to the cleaning rules).",
            config={"ops": {a.op.name: {"config": {"full_rebuild": True}} for a in rebuilt}},
        ),
    ]
