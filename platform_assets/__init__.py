"""platform_assets: landed Rossmann files -> raw -> cleaned -> features -> model, on Dagster."""
