"""Writing a layer's Polars frames into its lake table as one snapshot, and the watermarks layers keep.

A layer remembers how far it has read its input in ``ops.watermarks``; the
watermark moves in the same commit as the rows it describes, so a crash leaves
both at the previous snapshot.
"""

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime

import dagster as dg
import duckdb
import polars as pl

from platform_assets.warehouse import commits, digests

# A full rebuild transforms a chunk of rows at a time (``chunks``), as many as the run's memory
# limit allows (``Warehouse.rows_per_chunk``).
# Polars' in-memory engine: on chunks this size it needs ~half the memory of the streaming engine
# for the same time (benchmarks/pipeline.py).
POLARS_ENGINE = "in-memory"


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params=None):
    """The first value of a query's result, or None; the result is read to the end.

    DuckDB may keep a partly fetched result open and refuse the next statement.
    """
    rows = conn.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    sql = ("SELECT count(*) FROM information_schema.tables "
           "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?")
    return scalar(conn, sql, [schema, name]) > 0


def require_inputs(conn: duckdb.DuckDBPyConnection, layer: str, *inputs: str) -> None:
    """Fail with a plain message when a layer is materialized before its inputs ever were."""
    missing = [t for t in inputs if not table_exists(conn, t)]
    if missing:
        raise dg.Failure(description=f"{layer} has nothing to build from yet: {', '.join(missing)} "
                                     f"{'does' if len(missing) == 1 else 'do'} not exist. Load a file first "
                                     "(land one in landing/, or materialize the upstream assets).")


def read_watermark(conn: duckdb.DuckDBPyConnection, table: str) -> datetime | None:
    high_water = scalar(conn, "SELECT high_water FROM ops.watermarks WHERE table_name = ?", [table])
    return high_water if table_exists(conn, table) else None


def set_watermark(conn: duckdb.DuckDBPyConnection, table: str, high_water) -> None:
    """Record how far ``table`` has read its input; None forgets it (the next run rebuilds)."""
    conn.execute("DELETE FROM ops.watermarks WHERE table_name = ?", [table])
    if high_water is not None:
        conn.execute("INSERT INTO ops.watermarks VALUES (?, ?::TIMESTAMPTZ, now())", [table, high_water])


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frames: Iterable[pl.DataFrame],
    *,
    dates: list[date] | None,
    high_water: datetime | None,
) -> None:
    """Replace the whole table (``dates`` None) or the rows on ``dates`` with the rows of ``frames``.

    Call inside an open transaction. ``frames`` may be a generator: a full rebuild
    writes one chunk at a time. Every row gets ``_updated_at``, the transaction time,
    so the next layer can find what changed. The table keeps its identity (and so
    its change feed) unless its columns changed.
    """
    exists = table_exists(conn, table)
    removed = added = (0, 0)
    if exists and dates is not None:
        conn.register("_dates", pl.DataFrame({"date": dates}, schema={"date": pl.Date}))
        columns = digests.digest_columns(conn, table)
        removed = digests.row_hash_sum(conn, table, columns, "WHERE date IN (SELECT date FROM _dates)")
        conn.execute(f"DELETE FROM {table} WHERE date IN (SELECT date FROM _dates)")
        conn.unregister("_dates")
    elif exists:
        conn.execute(f"DELETE FROM {table}")
    # A rebuild's frame covers a range of one key and is sorted by the other (cleaned: dates, sorted
    # by store; features: stores, sorted by date), so a read by either key skips most of the table:
    # whole files by the range, row groups inside them by the sort. Within one insert the order of
    # row groups does not matter, so DuckDB may write in parallel. (A global setting: reset after.)
    conn.execute("SET preserve_insertion_order = false")
    try:
        for i, frame in enumerate(frames):
            # DuckDB finds ``_frame`` by its name in this function (a replacement scan), as Arrow. Not
            # registered: a view registered inside a transaction keeps its data until the commit, so a
            # rebuild's memory grew with the table (16x stores: +1.7 GB over a cleaned rebuild).
            _frame = frame.to_arrow(compat_level=pl.CompatLevel.newest())  # noqa: F841  (strings as views: no copy)
            if i == 0 and (not exists or digests.column_names(conn, table) != [*frame.columns, "_updated_at"]):
                conn.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT *, now() AS _updated_at FROM _frame")
                exists, dates = True, None  # a new table: its digest is computed in full below
            else:
                conn.execute(f"INSERT INTO {table} BY NAME SELECT *, now() AS _updated_at FROM _frame")
            if dates is not None:
                added = tuple(a + b for a, b in zip(added, conn.execute(
                    digests.row_hash_sql("_frame", columns)).fetchall()[0]))
            del _frame
    finally:
        conn.execute("RESET preserve_insertion_order")
    if dates is None:
        digests.recompute_digest(conn, table)
    else:
        digests.replace_digest(conn, table, removed, added)
    if high_water is not None:
        set_watermark(conn, table, high_water)


def chunks(conn: duckdb.DuckDBPyConnection, table: str, column: str, rows_per_chunk: int,
           where: str = "TRUE", params=None) -> list[tuple]:
    """Consecutive ranges of ``column``'s values (dates, stores) splitting the rows of ``table`` that match
    ``where`` into chunks of about ``rows_per_chunk`` rows, lowest first; all rows of one value fall in one chunk.

    A rebuild, or an update too large for one chunk, goes one range at a time, so its memory
    follows the chunk, not the table.
    """
    return conn.execute(f"""
        SELECT min(v), max(v) FROM (
            SELECT v, (sum(n) OVER (ORDER BY v) - n) // {int(rows_per_chunk)} AS chunk
            FROM (SELECT "{column}" AS v, count(*) AS n FROM {table}
                  WHERE "{column}" IS NOT NULL AND ({where}) GROUP BY 1))
        GROUP BY chunk ORDER BY 1""", params or []).fetchall()


def computed_ahead(scopes: Iterable, read: Callable, compute: Callable) -> Iterator:
    """``compute(read(scope))`` for each scope, in order, the next one computed while the caller writes this one.

    ``read`` runs on the caller's thread (it may use the caller's DuckDB connection, which is
    free between writes); ``compute`` (Polars, which releases the GIL) runs on one worker thread.
    So a chunked rebuild transforms chunk i+1 while DuckDB writes chunk i: two cores busy
    instead of one phase at a time. At most two chunks are held at once.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="compute-ahead") as pool:
        pending = None
        for scope in scopes:
            following = pool.submit(compute, read(scope))
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def table_schema(conn: duckdb.DuckDBPyConnection, table: str, descriptions: dict[str, str]) -> dg.TableSchema:
    """The table's real column types, with the transform's column descriptions."""
    described = {**descriptions, "_updated_at": "When this row was last written."}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, str(kind), description=described.get(name))
            for name, kind in conn.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
        ]
    )


def column_lineage(lineage: dict[str, list[tuple[str, str]]]) -> dg.TableColumnLineage:
    """Transform lineage as Dagster metadata; a table ``layer.name`` is asset ``[layer, name]``."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=dg.AssetKey(table.split(".")), column_name=source)
                     for table, source in sources]
            for column, sources in lineage.items()
        }
    )


def preview(conn: duckdb.DuckDBPyConnection, table: str, rows: int = 5) -> dg.TableMetadataValue:
    """The newest rows of the table, as a table the UI renders."""
    frame = conn.sql(f"SELECT * EXCLUDE (_updated_at) FROM {table} ORDER BY date DESC, store LIMIT {rows}").pl()
    return dg.MetadataValue.table(
        records=[dg.TableRecord({k: v if isinstance(v, (int, float, bool, str, type(None))) else str(v)
                                 for k, v in row.items()}) for row in frame.iter_rows(named=True)],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()]),
    )


def source_files(conn: duckdb.DuckDBPyConnection, dates: list[date] | None) -> list[str]:
    """The landed files behind the cleaned rows of ``dates`` (all rows if None)."""
    where = "" if dates is None else "WHERE date IN (SELECT unnest($dates))"
    params = {} if dates is None else {"dates": dates}
    return [f for (f,) in conn.execute(
        f"SELECT DISTINCT _source_file FROM cleaned.sales {where} ORDER BY 1", params).fetchall()]


def write_layer(
    context: dg.AssetExecutionContext,
    conn: duckdb.DuckDBPyConnection,
    table: str,
    plan: Callable[[], tuple[list[date] | None, datetime | None, Iterable[pl.DataFrame]]],
) -> tuple[list[date] | None, dg.DataVersion, dict]:
    """Replace a layer's rows and move its watermark in one labelled commit: one snapshot, one version.

    ``plan`` runs inside the transaction and returns (dates to replace or None for
    all, the new watermark, the frames); if another writer commits first, it runs
    again on the newer state. Returns the dates, the Dagster data version and the
    metadata that leads from the materialization to its snapshot.
    """

    def replace() -> tuple[list[date] | None, str, int]:
        dates, high_water, frames = plan()
        replace_rows(conn, table, frames, dates=dates, high_water=high_water)
        digest, rows = digests.data_version(conn, table), scalar(conn, f"SELECT count(*) FROM {table}")
        commits.set_commit_message(conn, f"materialize {table}", {
            "table": table, "run_id": context.run.run_id, "rows": rows, "data_version": digest,
            "high_water": high_water, "dates": None if dates is None else len(dates)})
        return dates, digest, rows

    dates, digest, _ = commits.write(conn, replace, log=context.log)
    snapshot = commits.last_snapshot(conn)
    context.log.info(f"committed {table} as snapshot {snapshot} (data version {digest})")
    return dates, dg.DataVersion(digest), {
        "data_version": digest,
        "snapshot": snapshot,
        "time_travel": dg.MetadataValue.md(f"`SELECT * FROM {table} AT (VERSION => {snapshot})`"),
    }


def describe(conn, table: str, dates, columns: dict[str, str], lineage) -> dict:
    """What the UI shows of a layer's table after a write."""
    return {
        "dagster/row_count": scalar(conn, f"SELECT count(*) FROM {table}"),
        "dagster/table_name": table,
        "dagster/column_schema": table_schema(conn, table, columns),
        "dagster/column_lineage": column_lineage(lineage),
        "preview": preview(conn, table),
        "source_files": dg.MetadataValue.json(source_files(conn, dates)),
        "mode": "full" if dates is None else "incremental",
    }
