"""Feature layer: ``features.sales_features``, recomputed where cleaned rows changed.

Incremental by default: the days whose cleaned rows changed since the last run,
and the days that can see them (``transforms.features.affected_dates``), are
recomputed from a bounded slice of ``cleaned.sales``, so the cost follows the
batch, not the length of history.
"""

import time
from collections import Counter

import dagster as dg
import polars as pl

from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.config import OWNER, LayerConfig
from platform_assets.resources import Warehouse
from platform_assets.transforms import features
from platform_assets.warehouse import tables

TABLE = "features.sales_features"
SOURCE = "cleaned.sales"
INPUTS = ", ".join(features.INPUTS)


@dg.asset(
    key=["features", "sales_features"],
    deps=[cleaned_sales],
    group_name="features",
    kinds={"duckdb", "polars", "soda"},
    owners=[OWNER],
    tags={"layer": "features", "domain": "sales"},
    code_version="1",
    pool="duckdb",
    description=(
        "Model-ready features per (store, date): calendar, promo, competition, holidays, lags, rolling stats.\n\n"
        "**Holds** the target (`sales`) and 41 features, each described in the column schema.\n\n"
        "**Grain:** one row per (store, date). Lags are exact calendar days (null across gaps); rolling "
        "statistics use only the days before.\n\n"
        "**Built by** `transforms/features.py` (Polars), incrementally: the changed days plus the 30 days "
        "after them, and the 30 before them when their state holidays changed (a full rebuild: a range of "
        "stores at a time). Every state is a DuckLake snapshot "
        "(`platform-assets versions features.sales_features`). Checked by `soda/contracts/sales_features.yml`."
    ),
)
def sales_features(context: dg.AssetExecutionContext, config: LayerConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    started = time.perf_counter()
    counts = Counter()

    def feature_frames(conn, targets):
        """Features of the ``targets`` dates (all dates if None), a range of stores at a time.

        Every feature looks only at the same store's rows, so a range of stores is exact on
        its own: an update reads its dates widened by the look-back and look-ahead, a full
        rebuild each store's whole history, and either goes in as many ranges as memory needs
        (a new store master changes every date). No context is read twice, no chunk needs
        another's rows; each chunk's rows are written in date order, so the row groups of its
        files stay ordered by date for later updates.
        """
        window, keep = "TRUE", None
        if targets:
            window = "date BETWEEN ? AND ?"
            keep = pl.col("date").is_in(pl.Series(targets, dtype=pl.Date).implode())
        params = features.input_range(targets[0], targets[-1]) if targets else []
        ranges = [] if targets == [] else tables.chunks(conn, SOURCE, "store", warehouse.rows_per_chunk, window, params)
        slices = [(f"store BETWEEN ? AND ? AND {window}", [first, last, *params], keep) for first, last in ranges]
        counts["chunks"] = len(slices)

        def read(slice_):
            scope, bound, wanted = slice_
            return conn.execute(f"SELECT {INPUTS} FROM {SOURCE} WHERE {scope}", bound).pl(), wanted

        def compute(job):
            cleaned, wanted = job
            frame = features.build_features(cleaned.lazy(), keep=wanted).collect(engine=tables.POLARS_ENGINE)
            return cleaned.height, frame

        # nothing to compute still yields one empty frame: the table and its columns exist
        jobs = tables.computed_ahead(slices or [("false", [], pl.lit(False))], read, compute)
        for number, (read_rows, frame) in enumerate(jobs, start=1):
            counts.update(read=read_rows, written=frame.height)
            yield frame
            if len(slices) > 1:
                context.log.info(f"chunk {number}/{len(slices)} written: {counts['written']:,} rows so far")

    def plan(conn):
        counts.clear()  # a retried commit starts over
        watermark = None if config.full_rebuild else tables.read_watermark(conn, TABLE)
        high_water = tables.scalar(conn, f"SELECT max(_updated_at) FROM {SOURCE}")
        targets = None
        if watermark is not None:
            targets = features.affected_dates(*_changed_dates(conn, watermark))
        context.log.info("full rebuild, a range of stores at a time" if targets is None
                         else f"recomputing {len(targets)} date(s)")
        return targets, high_water, feature_frames(conn, targets)

    with warehouse.get_connection() as conn:
        tables.require_inputs(conn, TABLE, SOURCE)
        targets, data_version, version_metadata = tables.write_layer(context, conn, TABLE, lambda: plan(conn))
        context.log.info(f"built {counts['written']:,} feature rows from {counts['read']:,} cleaned rows "
                         f"in {time.perf_counter() - started:.2f}s")
        described = tables.describe(conn, TABLE, targets, features.COLUMNS, features.LINEAGE)

    return dg.MaterializeResult(
        data_version=data_version,
        metadata={
            **version_metadata,
            **described,
            "rows_written": counts["written"],
            "cleaned_rows_read": counts["read"],
            "chunks": counts["chunks"],
            "seconds": round(time.perf_counter() - started, 3),
        }
    )


def _changed_dates(conn, watermark) -> tuple[list, list]:
    """(the days with cleaned rows written after ``watermark``, those of them with a state holiday row now
    or before the change, as the features built from their old rows say), from one read of the new rows."""
    changed = conn.execute(f"SELECT date, bool_or(state_holiday <> '0') FROM {SOURCE} WHERE _updated_at > ? "
                           "GROUP BY date ORDER BY date", [watermark]).fetchall()
    days = [day for day, _ in changed]
    before = {day for (day,) in conn.execute(
        f"SELECT DISTINCT date FROM {TABLE} WHERE date IN (SELECT unnest(?)) AND is_state_holiday", [days]).fetchall()}
    return days, [day for day, holiday in changed if holiday or day in before]
