"""The data version of a table: a content hash that ignores row order and load times.

The same input files give the same data version, however often and in what
order they were loaded. It is the sum of row hashes, kept in ``ops.table_digests``
and updated as rows are replaced (minus the removed, plus the added), so reading
it does not scan the table.
"""

import duckdb

LOAD_TIMESTAMPS = ("_loaded_at", "_updated_at")


def data_version(conn: duckdb.DuckDBPyConnection, table: str) -> str:
    """A content hash of the table, independent of row order and of when rows were loaded.

    It is the sum of row hashes, kept in ``ops.table_digests`` by ``replace_digest`` as rows
    are replaced, so reading it does not scan the table.
    """
    total, rows = _stored(conn, table) or recompute_digest(conn, table)
    return f"{int(total) % 2**64:016x}-{rows}"


def recompute_digest(conn: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """Hash every row of the table and store the digest (after a full rewrite)."""
    return _store(conn, table, *row_hash_sum(conn, table, digest_columns(conn, table)))


def replace_digest(conn, table: str, removed: tuple[int, int], added: tuple[int, int]) -> None:
    """Update the stored digest for rows replaced in place: minus the removed, plus the added."""
    stored = _stored(conn, table)
    if stored is None:
        recompute_digest(conn, table)
        return
    total, rows = stored
    _store(conn, table, total - removed[0] + added[0], rows - removed[1] + added[1])


def digest_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [name for name in column_names(conn, table) if name not in LOAD_TIMESTAMPS]


def column_names(conn: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [name for (name,) in conn.execute(f"SELECT column_name FROM (DESCRIBE {relation})").fetchall()]


def row_hash_sum(conn, relation: str, columns: list[str], where: str = "") -> tuple[int, int]:
    return tuple(conn.execute(row_hash_sql(relation, columns, where)).fetchall()[0])


def row_hash_sql(relation: str, columns: list[str], where: str = "") -> str:
    """The query giving (sum of row hashes, rows) of ``relation``."""
    row_hash = "hash(" + ", ".join(f'"{c}"' for c in columns) + ")"
    return f"SELECT coalesce(sum({row_hash}::HUGEINT), 0), count(*) FROM {relation} {where}"


def _stored(conn, table: str) -> tuple[int, int] | None:
    rows = conn.execute("SELECT hash_sum, rows FROM ops.table_digests WHERE table_name = ?", [table]).fetchall()
    return rows[0] if rows else None


def _store(conn, table: str, total: int, rows: int) -> tuple[int, int]:
    conn.execute("DELETE FROM ops.table_digests WHERE table_name = ?", [table])
    conn.execute("INSERT INTO ops.table_digests VALUES (?, ?, ?)", [table, total, rows])
    return total, rows
