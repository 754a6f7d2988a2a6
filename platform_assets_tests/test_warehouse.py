"""The lake itself: readers beside writers, and a data directory of the old layout."""

import os
import subprocess
import sys

from platform_assets.sample_data.land import land
from platform_assets_tests.conftest import lake


def test_a_reader_holding_the_lake_open_never_blocks_a_load_nor_sees_half_of_it(data_dir, load):
    land(data_dir, days=2)
    assert load().success and load("sales_2013-01-01.csv").success
    with lake(data_dir) as reader:  # a notebook that keeps its transaction open
        reader.execute("BEGIN")
        assert reader.sql("SELECT count(*) FROM raw.sales").fetchall() == [(1114,)]
        assert load("sales_2013-01-02.csv").success  # not blocked by the reader
        assert reader.sql("SELECT count(*) FROM raw.sales").fetchall() == [(1114,)]  # its snapshot, whole
        reader.execute("COMMIT")
        assert reader.sql("SELECT count(*) FROM raw.sales").fetchall() == [(1114 + 1115,)]  # the new one, whole


def test_a_data_directory_of_the_old_single_file_layout_gets_a_plain_instruction(data_dir, load):
    land(data_dir, days=1)
    (data_dir / "warehouse.duckdb").write_bytes(b"")  # what an earlier version of the platform left
    result = load()
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "warehouse.duckdb" in message and "run `make clean`" in message
    assert (data_dir / "landing" / "store.csv").exists() and not (data_dir / "lake.sqlite").exists()

    env = {**os.environ, "PLATFORM_DATA_DIR": str(data_dir)}
    cli = subprocess.run([sys.executable, "-m", "platform_assets.cli", "sql", "SELECT 1"], env=env,
                         capture_output=True, text=True)
    assert cli.returncode == 1 and "run `make clean`" in cli.stderr and "Traceback" not in cli.stderr
