"""A run killed (SIGKILL) in the middle of writing leaves the warehouse as it was; running again finishes the job.

The run is Dagster's own CLI (`dagster asset materialize`) in a child process on a
real instance; the test kills it the moment its log says the write has begun.
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from platform_assets_tests.conftest import lake, sales_files
from platform_assets.sample_data.land import land
from platform_assets.warehouse import digests, snapshots

REPO = Path(__file__).resolve().parents[1]
FEATURES = "features.sales_features"


@pytest.fixture
def home(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    """Environment of a Dagster instance on disk (so the CLI child and the test share it)."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(dagster_home), "PLATFORM_DATA_DIR": str(data_dir)}


def materialize(env: dict, select: str, partition: str | None = None, config: str | None = None,
                kill_after: str | None = None) -> tuple[int, str]:
    """Run `dagster asset materialize`; with ``kill_after``, SIGKILL it when that text shows in its log."""
    command = [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m",
               "platform_assets.definitions", "--select", select]
    command += ["--partition", partition] if partition else []
    command += ["--config-json", config] if config else []
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    log = []
    for line in process.stderr:
        log.append(line)
        if kill_after and kill_after in line:
            process.send_signal(signal.SIGKILL)
            break
    try:
        process.wait(timeout=300)
    finally:
        process.kill()  # never leave a child behind, whatever happened
    return process.returncode, "".join(log)


def terminate_the_killed_run(env: dict) -> None:
    """What an operator does after a hard kill (UI: Terminate), and what run monitoring then does:
    the run is marked canceled and its `duckdb` pool slot freed, so the next run can start."""
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        (run,) = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        instance.report_run_canceled(run, message="its process was killed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def add_partition(env: dict, name: str) -> None:
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        instance.add_dynamic_partitions(sales_files.name, [name])


def query(data_dir: Path, sql: str, params=None):
    with lake(data_dir) as conn:
        return conn.execute(sql, params or []).fetchall()


def test_a_load_killed_mid_write_leaves_nothing_and_a_rerun_loads_it_whole(home, data_dir):
    (first,) = land(data_dir, days=1)[1:]
    add_partition(home, first.path.name)
    assert materialize(home, "raw/stores")[0] == 0
    assert materialize(home, "raw/sales", first.path.name)[0] == 0
    (big,) = land(data_dir, batch="all")  # the rest of the history: 1,016,094 rows in one file
    add_partition(home, big.path.name)
    before = query(data_dir, "SELECT * FROM raw.sales ORDER BY ALL"), query(data_dir, "SELECT * FROM ops.landed_files")

    code, log = materialize(home, "raw/sales", big.path.name, kill_after="parsed")
    assert code == -signal.SIGKILL and "committed" not in log  # killed between parsing and the commit

    assert (query(data_dir, "SELECT * FROM raw.sales ORDER BY ALL"),
            query(data_dir, "SELECT * FROM ops.landed_files")) == before  # the previous consistent state
    assert big.path.exists()  # neither archived nor quarantined: the file waits for the retry
    terminate_the_killed_run(home)
    code, log = materialize(home, "raw/sales", big.path.name)
    assert code == 0, log[-3000:]
    assert query(data_dir, "SELECT count(*) FROM raw.sales WHERE _source_file = ?", [big.path.name]) == [(big.rows,)]
    assert query(data_dir, "SELECT count(*) FROM raw.sales") == [(first.rows + big.rows,)]


def test_a_feature_rebuild_killed_mid_write_leaves_the_last_version_and_a_rerun_gives_the_same(home, data_dir):
    home = {**home, "PLATFORM_MEMORY_LIMIT": "2GB"}  # chunks of ~460k rows ...
    (day,) = land(data_dir, batch="all", days=730)[1:]  # ... so a rebuild of these 814k rows goes in two
    add_partition(home, day.path.name)
    assert materialize(home, "raw/stores")[0] == 0
    assert materialize(home, "raw/sales", day.path.name)[0] == 0
    assert materialize(home, "cleaned/sales,features/sales_features")[0] == 0

    def state():
        with lake(data_dir, read_only=False) as conn:
            return (digests.data_version(conn, FEATURES),
                    conn.sql(f"SELECT count(*), max(_updated_at) FROM {FEATURES}").fetchall(),
                    conn.sql("SELECT * FROM ops.watermarks ORDER BY ALL").fetchall())

    def history():
        with lake(data_dir) as conn:
            return snapshots.history(conn, FEATURES)

    before, versions = state(), history()
    rebuild = '{"ops": {"features__sales_features": {"config": {"full_rebuild": true}}}}'

    code, log = materialize(home, "features/sales_features", config=rebuild, kill_after="chunk 1/2 written")
    assert code == -signal.SIGKILL and "built" not in log

    assert state() == before
    with lake(data_dir, read_only=False) as conn:  # the stored digest is the table's
        digests.recompute_digest(conn, FEATURES)
        assert digests.data_version(conn, FEATURES) == before[0]
    assert history() == versions  # no snapshot was half-committed
    terminate_the_killed_run(home)
    code, log = materialize(home, "features/sales_features", config=rebuild)
    assert code == 0, log[-3000:]
    after = state()
    assert after[0] == before[0] and after[1][0][0] == before[1][0][0]  # same rows as an uninterrupted run
    latest = history()[0]["version"]
    assert latest > versions[0]["version"]
    assert query(data_dir, f"SELECT count(*) FROM {FEATURES} AT (VERSION => {latest})") == [(before[1][0][0],)]
