"""Cleaned layer: ``cleaned.sales``, recomputed for the dates that new raw files touch.

Only verified batches are read: a landed file whose blocking checks have not
passed (they failed, or never ran because its run died after the commit) stays
in raw and out of this layer, whoever starts the run. What it would change waits
for it too: the dates of its rows, and of the rows its earlier version gave this
table, keep their rows until it is verified, even when another file touches them
(without this, a bad correction would take its file's good earlier rows out of
those dates). Overlapping files are resolved by when each first landed (the
ledger's ``landed_at``), so re-loading an older file never undoes a correction.

Incremental by default: the dates to redo are those of the sales files verified
since the last run (their new rows and the rows they contributed before). A newly
verified store master, a first run or ``full_rebuild`` recompute everything but
the dates that wait.
"""

import time
from collections import Counter

import dagster as dg
import polars as pl

from platform_assets.assets.config import OWNER, LayerConfig
from platform_assets.resources import Warehouse
from platform_assets.transforms import cleaning
from platform_assets.warehouse import ledger, tables

TABLE = "cleaned.sales"


@dg.asset(
    key=["cleaned", "sales"],
    deps=[dg.AssetKey(["raw", "sales"]), dg.AssetKey(["raw", "stores"])],  # landed datasets: defs/sales, defs/stores
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
        "**Grain:** one row per (store, date); when files overlap, the one that landed last wins.\n\n"
        "**Built by** `transforms/cleaning.py` (Polars) from verified files only (their blocking checks "
        "passed), incrementally: only the dates of newly verified files are recomputed. Every state is a "
        "DuckLake snapshot (`platform-assets versions cleaned.sales`). "
        "Checked by `soda/contracts/cleaned_sales.yml`."
    ),
)
def cleaned_sales(context: dg.AssetExecutionContext, config: LayerConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    started = time.perf_counter()
    counts = Counter()

    def cleaned_frames(conn, dates, held, kept):
        """The cleaned rows of ``dates``, or of every date but the ``held`` ones a range of dates at a time
        (then the ``kept`` rows of the held dates as they are)."""
        if dates is None:
            ranges = tables.chunks(conn, "raw.sales", "Date", warehouse.rows_per_chunk) or [(None, None)]
            scopes = [("Date BETWEEN ? AND ?", [first, last]) for first, last in ranges]
            scopes[0] = ("(Date BETWEEN ? AND ? OR Date IS NULL)", scopes[0][1])  # so the checks see them
            if held:
                conn.register("_held", pl.DataFrame({"date": held}, schema={"date": pl.Date}))
                scopes = [(f"{scope} AND Date NOT IN (SELECT date FROM _held)", params) for scope, params in scopes]
        else:  # an update larger than a chunk (a month-long correction file) goes a range of its dates at a time
            conn.register("_redo", pl.DataFrame({"date": dates}, schema={"date": pl.Date}))
            redo = "Date IN (SELECT date FROM _redo)"
            scopes = [(f"{redo} AND Date BETWEEN ? AND ?", [first, last]) for first, last in
                      tables.chunks(conn, "raw.sales", "Date", warehouse.rows_per_chunk, redo)] or [(redo, [])]
        stores = conn.sql("SELECT * FROM raw.stores").pl().lazy()
        counts["chunks"] = len(scopes)
        if kept is not None and kept.height:
            yield kept

        def read(scope):
            where, params = scope
            return conn.execute(f"SELECT s.*, v.landed_at AS _landed_at FROM raw.sales s JOIN ({ledger.VERIFIED}) v "
                                f"ON v.file_name = s._source_file WHERE {where}", params).pl()

        def compute(raw):
            return raw.height, cleaning.clean_sales(raw.lazy(), stores).collect(engine=tables.POLARS_ENGINE)

        for number, (raw_rows, frame) in enumerate(tables.computed_ahead(scopes, read, compute), start=1):
            counts.update(raw=raw_rows, cleaned=frame.height,
                          **dict(frame["quality_issue"].drop_nulls().value_counts().iter_rows()))
            yield frame
            if len(scopes) > 1:
                context.log.info(f"chunk {number}/{len(scopes)} written: {counts['cleaned']:,} rows so far")

    def plan(conn):
        counts.clear()  # a retried commit starts over
        high_water, dates, held = _dates_to_redo(conn, config.full_rebuild)
        context.log.info("full rebuild, a range of dates at a time" if dates is None
                         else f"recomputing {len(dates)} date(s)")
        if held:
            context.log.info(f"{len(held)} date(s) ({held[0]} .. {held[-1]}) keep their rows: a batch that would "
                             f"change them is not verified ({', '.join(_unverified(conn)[:5])})")
        kept = None  # a full rebuild writes the rows of the dates that wait back as they are
        if dates is None and held and tables.table_exists(conn, TABLE):
            kept = conn.execute(f"SELECT * EXCLUDE (_updated_at) FROM {TABLE} WHERE date IN (SELECT unnest(?))",
                                [held]).pl()
        return dates, high_water, cleaned_frames(conn, dates, held, kept)

    with warehouse.get_connection() as conn:
        tables.require_inputs(conn, TABLE, "raw.stores", "raw.sales")
        _require_verified_master(conn)
        dates, data_version, version_metadata = tables.write_layer(context, conn, TABLE, lambda: plan(conn))
        context.log.info(f"cleaned {counts['raw']:,} raw rows into {counts['cleaned']:,} "
                         f"in {time.perf_counter() - started:.2f}s")
        described = tables.describe(conn, TABLE, dates, cleaning.COLUMNS, cleaning.LINEAGE)
        recomputed = len(dates) if dates is not None else tables.scalar(conn, f"SELECT count(DISTINCT date) FROM {TABLE}")

    return dg.MaterializeResult(
        data_version=data_version,
        metadata={
            **version_metadata,
            **described,
            "dates_recomputed": recomputed,
            "rows_written": counts["cleaned"],
            "chunks": counts["chunks"],
            "duplicates_resolved": counts["raw"] - counts["cleaned"],
            **{f"rows_{issue}": counts[issue] for issue in cleaning.QUALITY_ISSUES},
            "seconds": round(time.perf_counter() - started, 3),
        }
    )


def _require_verified_master(conn) -> None:
    """Sales are cleaned against the store master: one whose checks have not passed stops the layer."""
    master = conn.execute("SELECT DISTINCT _source_file FROM raw.stores").fetchall()
    verified = {name for (name,) in conn.execute(f"SELECT file_name FROM ({ledger.VERIFIED})").fetchall()}
    if not master or any(name not in verified for (name,) in master):
        raise dg.Failure(description="raw.stores holds a store master whose blocking checks have not passed; "
                                     f"{TABLE} is not built from it. Land a corrected store master.")


def _unverified(conn) -> list[str]:
    """Sales files whose loaded version has not (or not yet) passed its blocking checks."""
    return [name for (name,) in conn.execute(
        "SELECT file_name FROM ops.landed_files WHERE kind = 'sales' AND status = 'loaded' AND verified_at IS NULL "
        "ORDER BY 1").fetchall()]


def _held_dates(conn) -> list:
    """The dates an unverified batch would change: those of its rows, and of the rows its earlier version gave us."""
    waiting = _unverified(conn)
    if not waiting:
        return []
    previous = f"UNION SELECT date FROM {TABLE} WHERE _source_file IN (SELECT unnest($files))" \
        if tables.table_exists(conn, TABLE) else ""
    return [d for (d,) in conn.execute(
        f"SELECT Date FROM raw.sales WHERE _source_file IN (SELECT unnest($files)) AND Date IS NOT NULL "
        f"{previous} ORDER BY 1", {"files": waiting}).fetchall()]


def _dates_to_redo(conn, full_rebuild: bool):
    """(new high water, dates to recompute or None for every date, the dates that wait), from the ledger."""
    held = _held_dates(conn)
    watermark = tables.read_watermark(conn, TABLE)
    high_water = tables.scalar(conn, f"SELECT max(verified_at) FROM ({ledger.VERIFIED})")
    stores_changed = watermark is not None and tables.scalar(
        conn, "SELECT count(*) FROM ops.landed_files WHERE kind = 'stores' AND status = 'loaded' AND verified_at > ?",
        [watermark],
    )
    if full_rebuild or watermark is None or stores_changed:
        return high_water, None, held
    dates = conn.execute(
        f"""WITH changed AS (SELECT file_name FROM ops.landed_files
                             WHERE kind = 'sales' AND status = 'loaded' AND verified_at > $watermark)
            SELECT Date FROM raw.sales WHERE _source_file IN (SELECT file_name FROM changed)
            UNION
            SELECT date FROM {TABLE} WHERE _source_file IN (SELECT file_name FROM changed)
            ORDER BY 1""",
        {"watermark": watermark},
    ).fetchall()
    waiting = set(held)
    return high_water, [d for (d,) in dates if d not in waiting], held
