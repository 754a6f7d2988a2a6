"""A reader beside the pipeline, as a notebook would be: it attaches the lake once and keeps it open.

Run as ``python -m platform_assets_tests.e2e.lake_reader <output file>`` with the lake settings in the
environment. Every half second it writes one JSON line: the rows of each landed file in raw.sales
and the rows of cleaned.sales and features.sales_features, all read in one transaction (one snapshot).
It stops when the output file's ``.stop`` sibling appears.
"""

import json
import sys
import time
from pathlib import Path

from platform_assets.resources import Warehouse
from platform_assets.settings import Settings

LAYERS = ("cleaned.sales", "features.sales_features")


def observe(conn) -> dict:
    conn.execute("BEGIN")
    try:
        tables = {name for (name,) in conn.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = 'lake'").fetchall()}
        files = dict(conn.sql("SELECT _source_file, count(*) FROM raw.sales GROUP BY 1").fetchall()) \
            if "raw.sales" in tables else {}
        layers = {t: conn.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] if t in tables else 0 for t in LAYERS}
    finally:
        conn.execute("COMMIT")
    return {"time": time.time(), "files": files, **layers}


def main(output: Path) -> None:
    with Warehouse.from_settings(Settings.from_env(), read_only=True).get_connection() as conn, \
            output.open("a") as out:
        while not output.with_suffix(".stop").exists():
            out.write(json.dumps(observe(conn)) + "\n")
            out.flush()
            time.sleep(0.5)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
