"""Parse a landed CSV strictly against its schema, or say exactly why it can't be.

DuckDB's CSV reader does the work with an explicit schema (no type guessing,
strict mode); this module adds the checks it leaves to us (empty file, header)
and turns its errors into a short reason with the line number. The file is untrusted:
a reason names what was expected and found, and quotes the file only in bounded
excerpts (``excerpts.py``), so a 10 MB line makes a reason of a few hundred bytes.
"""

from __future__ import annotations

import duckdb

from platform_assets.datasets.component import LandedDataset
from platform_assets.excerpts import excerpt, names
from platform_assets.storage import Entry

# A header longer than this is not one: it is read no further and the file is quarantined.
MAX_HEADER_BYTES = 64 * 1024


class BadFile(Exception):
    """A landed file that cannot be loaded; the message is the quarantine reason."""


def stage_csv(conn: duckdb.DuckDBPyConnection, source: Entry, dataset: LandedDataset, table: str) -> int:
    """Parse ``source`` into temp table ``table`` with the dataset's columns in order; return its rows.

    DuckDB reads it where it is: a local path, or an object (``s3://``) through httpfs.

    Raises BadFile with a reason naming the file (and line, where DuckDB knows it).
    """
    parse, expected = dataset.parse, [c.name for c in dataset.columns]
    header = _read_header(source, dataset) if parse.header else expected
    if sorted(header) != sorted(expected):
        missing = [c for c in expected if c not in header]
        unexpected = [c for c in header if c not in expected]
        raise BadFile(
            f"{source.name}: header does not match the {dataset.name} schema (expected "
            f"{parse.delimiter.join(expected)}; found {len(header):,} column(s))"
            + (f"; missing columns: {', '.join(missing)}" if missing else "")
            + (f"; unexpected columns: {names(unexpected)}" if unexpected else "")
            + ("; duplicated columns in header" if not missing and not unexpected else "")
        )
    types = {c.name: c.type for c in dataset.columns}
    # Columns are typed in the order the file has them, then selected in the declared order.
    columns = {name: types[name] for name in header}
    select = ", ".join(f'"{name}"' for name in expected)
    try:
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {select} FROM read_csv("
            "$path, header = $header, columns = $columns, auto_detect = false, delim = $delim, quote = $quote, "
            "escape = $quote, dateformat = $dateformat, decimal_separator = $decimal, encoding = $encoding, "
            "strict_mode = true)",
            {"path": source.url, "columns": columns, "header": parse.header, "delim": parse.delimiter,
             "quote": parse.quote, "dateformat": parse.date_format, "decimal": parse.decimal_separator,
             "encoding": parse.encoding},
        )
    except (duckdb.ConversionException, duckdb.InvalidInputException) as error:
        raise BadFile(f"{source.name}: {excerpt(_first_paragraph(str(error)))}") from None
    return conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def _read_header(source: Entry, dataset: LandedDataset) -> list[str]:
    parse = dataset.parse
    with source.open() as handle:
        first_line = handle.readline(MAX_HEADER_BYTES + 1)
    if not first_line.strip():
        raise BadFile(f"{source.name}: file is empty (no header line)")
    if len(first_line) > MAX_HEADER_BYTES and not first_line.endswith(b"\n"):
        raise BadFile(f"{source.name}: line 1 is longer than {MAX_HEADER_BYTES:,} bytes, so it is not the header of "
                      f"the {dataset.name} schema (expected {parse.delimiter.join(c.name for c in dataset.columns)})")
    try:
        text = first_line.decode("utf-8-sig" if parse.encoding == "utf-8" else parse.encoding)
    except UnicodeDecodeError as error:
        raise BadFile(f"{source.name}: line 1 is not {parse.encoding} ({error.reason} at byte {error.start})") from None
    return [name.strip().strip(parse.quote) for name in text.rstrip("\r\n").split(parse.delimiter)]


def _first_paragraph(message: str) -> str:
    """DuckDB's CSV errors start with what went wrong and go on with generic advice."""
    lines = []
    for line in message.splitlines():
        if not line.strip() or line.startswith(("Possible", "Column ", "This type")):
            break
        lines.append(line.strip())
    return " | ".join(lines)
