"""Cleaned layer: ``cleaned.sales``, recomputed for the dates that new raw files touch.

Incremental by default: the dates to redo are those of the sales files loaded
since the last run (their new rows and the rows they contributed before). A new
store master, a first run or ``full_rebuild`` recompute everything.
"""

import time

import dagster as dg
import polars as pl

from platform_assets import tables
from platform_assets.assets.config import LayerConfig
from platform_assets.assets.raw import OWNER, raw_sales, raw_stores
from platform_assets.resources import Warehouse
from platform_assets.transforms import cleaning

TABLE = "cleaned.sales"


@dg.asset(
    key=["cleaned", "sales"],
    deps=[raw_sales, raw_stores],
    group_name="cleaned",
    kinds={"duckdb", "polars", "soda"},
    owners=[OWNER],
    tags={"layer": "cleaned", "domain": "sales"},
    code_version="1",
    pool="duckdb",
    description=(
        "Sales joined with the store master: one row per (store, date), deduplicated, typed, gaps filled.\n\n"
        "**Holds** every landed sales day with its store's attributes; closed days are kept (`is_open`), "
        "rows breaking a hard rule are kept and named in `quality_issue`.\n\n"
        "**Grain:** one row per (store, date); when files overlap, the most recently loaded one wins.\n\n"
        "**Built by** `transforms/cleaning.py` (Polars), incrementally: only the dates of newly loaded "
        "files are recomputed. Every state is a Delta version under `data/versions/cleaned.sales`. "
        "Checked by `soda/contracts/cleaned_sales.yml`."
    ),
)
def cleaned_sales(context: dg.AssetExecutionContext, config: LayerConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    started = time.perf_counter()
    with warehouse.get_connection() as conn:
        with tables.transaction(conn):
            high_water, dates = _dates_to_redo(conn, config.full_rebuild)
            where = "" if dates is None else "WHERE Date IN (SELECT date FROM _dates)"
            if dates is not None:
                conn.register("_dates", pl.DataFrame({"date": dates}, schema={"date": pl.Date}))
            context.log.info("full rebuild" if dates is None else f"recomputing {len(dates)} date(s)")
            raw = conn.sql(f"SELECT * FROM raw.sales {where}").pl()
            stores = conn.sql("SELECT * FROM raw.stores").pl()
            frame = cleaning.clean_sales(raw.lazy(), stores.lazy()).collect()
            context.log.info(f"cleaned {raw.height:,} raw rows into {frame.height:,} in {time.perf_counter() - started:.2f}s")
            data_version, version_metadata = tables.write_layer(
                context, conn, warehouse, TABLE, frame, dates=dates, high_water=high_water)
        described = tables.describe(conn, TABLE, dates, cleaning.COLUMNS, cleaning.LINEAGE)

    issues = frame["quality_issue"].value_counts()
    issue_counts = dict(zip(issues["quality_issue"].to_list(), issues["count"].to_list()))
    return dg.MaterializeResult(
        data_version=data_version,
        metadata={
            **version_metadata,
            **described,
            "dates_recomputed": frame["date"].n_unique(),
            "rows_written": frame.height,
            "duplicates_resolved": raw.height - frame.height,
            **{f"rows_{issue}": issue_counts.get(issue, 0) for issue in cleaning.QUALITY_ISSUES},
            "seconds": round(time.perf_counter() - started, 3),
        }
    )


def _dates_to_redo(conn, full_rebuild: bool):
    """(new high water, dates to recompute or None for everything), from the load ledger."""
    watermark = tables.read_watermark(conn, TABLE)
    high_water = tables.scalar(conn, "SELECT max(loaded_at) FROM ops.landed_files WHERE status = 'loaded'")
    stores_changed = watermark is not None and tables.scalar(
        conn,
        "SELECT count(*) FROM ops.landed_files WHERE kind = 'stores' AND status = 'loaded' AND loaded_at > ?",
        [watermark],
    )
    if full_rebuild or watermark is None or stores_changed:
        return high_water, None
    dates = conn.execute(
        f"""WITH changed AS (SELECT file_name FROM ops.landed_files
                             WHERE kind = 'sales' AND status = 'loaded' AND loaded_at > $watermark)
            SELECT Date FROM raw.sales WHERE _source_file IN (SELECT file_name FROM changed)
            UNION
            SELECT date FROM {TABLE} WHERE _source_file IN (SELECT file_name FROM changed)
            ORDER BY 1""",
        {"watermark": watermark},
    ).fetchall()
    return high_water, [d for (d,) in dates]
