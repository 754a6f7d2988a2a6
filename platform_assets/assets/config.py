"""Run configuration shared by the incremental layers."""

import dagster as dg


class LayerConfig(dg.Config):
    """Set ``full_rebuild`` to recompute the whole table instead of the changed dates."""

    full_rebuild: bool = False

# Who owns the layers built here (the landed datasets name theirs in their defs.yaml).
OWNER = "team:data-platform"
# The layers that follow what lands, day by day, a date range at a time (the model follows them).
DAILY_LAYERS = ("cleaned", "features")
