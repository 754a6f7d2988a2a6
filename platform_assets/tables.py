"""Writing Polars frames into DuckDB atomically, and the watermarks incremental layers keep.

A layer remembers how far it has read its input in ``ops.watermarks``; the
watermark moves in the same transaction as the rows it describes, so a crash
leaves both at the previous state.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from platform_assets import versions

# A full rebuild transforms this many rows at a time (see ``date_chunks``): about 200 MB of features.
# Smaller chunks save little memory (250k: -70 MB at 1x) and cost time: each chunk also reads
# the 60 days of context around it (250k: +14% time at 4x stores).
CHUNK_ROWS = 500_000
# Polars' in-memory engine: on chunks this size it needs ~half the memory of the streaming engine
# for the same time (benchmarks/pipeline.py).
POLARS_ENGINE = "in-memory"

WATERMARKS_DDL = """
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE IF NOT EXISTS ops.watermarks (
    table_name VARCHAR PRIMARY KEY,
    high_water TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);
"""


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: commit when the block ends, roll back when it raises."""
    conn.begin()
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params=None):
    """The first value of a query's result, or None; the result is read to the end.

    DuckDB 2 keeps a partly fetched result open and refuses the next statement.
    """
    rows = conn.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
    return scalar(conn, sql, [schema, name]) > 0


def require_inputs(conn: duckdb.DuckDBPyConnection, layer: str, *inputs: str) -> None:
    """Fail with a plain message when a layer is materialized before its inputs ever were."""
    missing = [t for t in inputs if not table_exists(conn, t)]
    if missing:
        raise dg.Failure(description=f"{layer} has nothing to build from yet: {', '.join(missing)} "
                                     f"{'does' if len(missing) == 1 else 'do'} not exist. Load a file first "
                                     "(land one in landing/, or materialize the upstream assets).")


def read_watermark(conn: duckdb.DuckDBPyConnection, table: str) -> datetime | None:
    conn.execute(WATERMARKS_DDL)
    high_water = scalar(conn, "SELECT high_water FROM ops.watermarks WHERE table_name = ?", [table])
    return high_water if table_exists(conn, table) else None


def set_watermark(conn: duckdb.DuckDBPyConnection, table: str, high_water) -> None:
    """Record how far ``table`` has read its input; None forgets it (the next run rebuilds)."""
    conn.execute(WATERMARKS_DDL)
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
    so the next layer can find what changed.
    """
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
    rebuild = dates is None or not table_exists(conn, table)
    if not rebuild:
        conn.register("_dates", pl.DataFrame({"date": dates}, schema={"date": pl.Date}))
        columns = versions.digest_columns(conn, table)
        removed = versions.row_hash_sum(conn, table, columns, "WHERE date IN (SELECT date FROM _dates)")
        added = (0, 0)
        conn.execute(f"DELETE FROM {table} WHERE date IN (SELECT date FROM _dates)")
        conn.unregister("_dates")
    # Rows arrive in date order (a rebuild goes a date range at a time), so the table stays stored
    # by date without a re-sort: an incremental run's deletes and the checkpoint after them touch
    # only the row groups of its dates. Within one insert the order does not matter, so DuckDB may
    # write in parallel. (After an error the setting stays on this connection until it is closed.)
    conn.execute("SET preserve_insertion_order = false")
    for i, frame in enumerate(frames):
        conn.register("_frame", frame)
        if rebuild and i == 0:
            conn.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT *, now() AS _updated_at FROM _frame")
        else:
            conn.execute(f"INSERT INTO {table} BY NAME SELECT *, now() AS _updated_at FROM _frame")
        if not rebuild:
            added = tuple(a + b for a, b in zip(added, versions.row_hash_sum(conn, "_frame", columns)))
        conn.unregister("_frame")
    conn.execute("RESET preserve_insertion_order")
    if rebuild:
        versions.recompute_digest(conn, table)
    else:
        versions.replace_digest(conn, table, removed, added)
    if high_water is not None:
        set_watermark(conn, table, high_water)


def date_chunks(conn: duckdb.DuckDBPyConnection, table: str, day: str, rows_per_chunk: int) -> list[tuple[date, date]]:
    """Consecutive date ranges splitting ``table`` into chunks of about ``rows_per_chunk`` rows, oldest first.

    A full rebuild goes one range at a time: its memory follows the chunk, not the
    length of history, and its rows reach the table already in date order.
    """
    return conn.execute(f"""
        SELECT min(day), max(day) FROM (
            SELECT day, (sum(n) OVER (ORDER BY day) - n) // {int(rows_per_chunk)} AS chunk
            FROM (SELECT "{day}" AS day, count(*) AS n FROM {table} WHERE "{day}" IS NOT NULL GROUP BY 1))
        GROUP BY chunk ORDER BY 1""").fetchall()


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


def publish_version(
    context: dg.AssetExecutionContext,
    conn: duckdb.DuckDBPyConnection,
    table: str,
    versions_dir: Path,
    retention_hours: int,
    *,
    dates: list[date] | None,
    high_water: datetime | None,
) -> tuple[dg.DataVersion, dict]:
    """Publish the table's new state as a Delta version (inside the open transaction, before commit).

    Returns the Dagster data version and the metadata that leads from the run to that version.
    """
    digest = versions.data_version(conn, table)
    rows = scalar(conn, f"SELECT count(*) FROM {table}")
    number = versions.publish(conn, versions_dir, table, dates=dates, commit={
        "action": "materialize", "run_id": context.run.run_id, "rows": rows, "data_version": digest,
        "high_water": high_water})
    pruned = versions.prune(versions_dir, table, retention_hours)
    context.log.info(f"published {table} as Delta version {number} (data version {digest})"
                     + (f"; pruned {len(pruned)} file(s) past retention" if pruned else ""))
    return dg.DataVersion(digest), {
        "data_version": digest,
        "delta_version": number,
        "delta_table": dg.MetadataValue.path(str(versions_dir / table)),
    }


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


def write_layer(context, conn, warehouse, table: str, frames: Iterable[pl.DataFrame], *, dates, high_water):
    """Inside the open transaction: replace the rows, move the watermark, publish the Delta version.

    Returns the Dagster data version and the version metadata.
    """
    replace_rows(conn, table, frames, dates=dates, high_water=high_water)
    return publish_version(context, conn, table, warehouse.versions_path, warehouse.version_retention_hours,
                           dates=dates, high_water=high_water)


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
