"""Run configuration shared by the incremental layers."""

import dagster as dg


class LayerConfig(dg.Config):
    """Set ``full_rebuild`` to recompute the whole table instead of the changed dates."""

    full_rebuild: bool = False
