"""Pure Polars transforms (LazyFrame -> LazyFrame): no Dagster, no I/O."""
