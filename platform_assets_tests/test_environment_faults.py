"""Faults of the machine, not of the data: a catalog locked by another process, a full disk.

Each ends in one plain message, leaves nothing behind (no archive copy of a version that
never loaded, no orphan that maintenance would not remove) and the file loads once when
the fault is gone. Real SQLite locks from another process, a real (small) tmpfs.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from platform_assets import disk_space
from platform_assets.resources import LandingZone, Warehouse
from platform_assets.sample_data.land import land
from platform_assets.warehouse import tables
from platform_assets_tests.conftest import files_in
from platform_assets_tests.test_sensor import master_loaded, run_request, tick  # noqa: F401 (fixtures)

DAY = "sales_2013-01-01.csv"


def plain_failure(result, cls_name: str) -> str:
    """The run's failure: our own message, with no exception chained under it."""
    error = result.failure_data_for_node("raw__sales").error
    assert error.cls_name == cls_name and error.cause is None, error.to_string()
    assert "Traceback" not in error.message
    return error.message


def retried(tick, within: float = 60) -> object:
    """Tick the landing sensor until it asks for the load again (after its back-off)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        requests = tick().run_requests
        if requests:
            (request,) = requests
            return request
        time.sleep(0.2)
    raise AssertionError(f"the landing sensor did not retry within {within} s")


def loaded_once(data_dir: Path, warehouse: Warehouse, name: str = DAY) -> None:
    with warehouse.get_connection() as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT \"Store\") FROM raw.sales WHERE _source_file = ?",
                            [name]).fetchall() == [(1114, 1114)]  # one store has no row that day
        assert conn.execute("SELECT status FROM ops.landed_files WHERE file_name = ?", [name]).fetchall() == [
            ("loaded",)]
    assert len(list((data_dir / "archive" / name).iterdir())) == 1
    assert not (data_dir / "landing" / name).exists()


def never_loaded(data_dir: Path, warehouse: Warehouse, before: set[str], name: str = DAY) -> None:
    assert files_in(data_dir) == before  # no archive copy, no temporary file, nothing half-written
    with warehouse.get_connection() as conn:
        if tables.table_exists(conn, "raw.sales"):
            assert conn.execute("SELECT count(*) FROM raw.sales WHERE _source_file = ?", [name]).fetchall() == [(0,)]
        assert conn.execute("SELECT count(*) FROM ops.landed_files WHERE file_name = ?", [name]).fetchall() == [(0,)]
    assert (data_dir / "landing" / name).exists()


@pytest.fixture
def catalog_lock(data_dir):
    """Another process holding BEGIN EXCLUSIVE on the lake's SQLite catalog until released."""
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sqlite3, sys
conn = sqlite3.connect({str(data_dir / 'lake.sqlite')!r}, isolation_level=None)
conn.execute('BEGIN EXCLUSIVE')
print('locked', flush=True)
sys.stdin.readline()
conn.execute('ROLLBACK')
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def release() -> None:
        if holder.poll() is None:
            holder.communicate("\n", timeout=30)

    assert holder.stdout.readline().strip() == "locked"
    yield release
    release()


def test_a_catalog_locked_past_the_window_fails_plainly_and_loads_once_released(
        tick, data_dir, instance, resources, master_loaded, monkeypatch, catalog_lock):
    monkeypatch.setenv("PLATFORM_CATALOG_LOCK_SECONDS", "2")
    monkeypatch.setenv("PLATFORM_LANDING_RETRY_SECONDS", "1")
    land(data_dir, days=1)
    before = files_in(data_dir)
    (request,) = tick().run_requests

    failed = run_request(instance, resources, request)
    message = plain_failure(failed, "CatalogLocked")
    assert f"the lake's catalog {data_dir / 'lake.sqlite'} is locked by another process" in message
    assert "longer than PLATFORM_CATALOG_LOCK_SECONDS=2; nothing was committed" in message
    catalog_lock()  # released: the lake can be read again, and nothing of the load is in it
    never_loaded(data_dir, resources["warehouse"], before)

    assert run_request(instance, resources, retried(tick)).success
    loaded_once(data_dir, resources["warehouse"])


def fill(disk: Path, leave: int) -> Path:
    """Take all the free space of ``disk`` but ``leave`` bytes; the filler file is returned to be removed."""
    filler = disk / "filler"
    with filler.open("wb") as handle:
        handle.write(b"\0" * (shutil.disk_usage(disk).free - leave))
    return filler


@pytest.fixture
def tmpfs(tmp_path):
    """A tmpfs of the given size, unmounted after the test (also when it fails)."""
    mounted = []

    def _tmpfs(name: str, size: str) -> Path:
        mount = tmp_path / name
        mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
        mounted.append(mount)
        return mount

    yield _tmpfs
    for mount in mounted:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class TestAFullDisk:
    """The data directory on a small disk of its own."""

    @pytest.fixture
    def disk(self, tmpfs):
        return tmpfs("disk", "16m")

    @pytest.fixture
    def data_dir(self, disk):
        return disk / "data"

    @pytest.fixture(autouse=True)
    def quick_retries(self, monkeypatch):
        monkeypatch.setenv("PLATFORM_LANDING_RETRY_SECONDS", "1")

    def test_it_stops_a_load_before_it_writes_and_the_file_loads_once_there_is_room(
            self, disk, tick, data_dir, instance, resources, master_loaded):
        land(data_dir, days=1)
        size = (data_dir / "landing" / DAY).stat().st_size
        before = files_in(data_dir)
        filler = fill(disk, leave=size // 2)
        (request,) = tick().run_requests

        failed = run_request(instance, resources, request)
        message = plain_failure(failed, "OutOfSpace")
        assert f"not enough disk space for loading {DAY}: it needs about " in message
        needed = int(message.split("it needs about ")[1].split(" bytes")[0].replace(",", ""))
        assert needed >= 2 * size + disk_space.HEADROOM_BYTES  # the archive copy, the Parquet data, the catalog
        assert "on the file system of " in message and "Nothing of it was kept" in message

        filler.unlink()
        never_loaded(data_dir, resources["warehouse"], before)
        assert run_request(instance, resources, retried(tick)).success
        loaded_once(data_dir, resources["warehouse"])


class TestALakeDiskFilledDuringALoad:
    """The lake's data path on a small disk of its own that another process fills after the load's check
    (the check is skipped to stage that race): the write itself runs out of space."""

    @pytest.fixture
    def lake_disk(self, tmpfs):
        return tmpfs("lake", "4m")

    @pytest.fixture
    def resources(self, data_dir, lake_disk, monkeypatch):
        monkeypatch.setenv("PLATFORM_LANDING_RETRY_SECONDS", "1")
        return {"landing": LandingZone(data_dir=str(data_dir)),
                "warehouse": Warehouse(catalog=f"sqlite:{data_dir / 'lake.sqlite'}", data_path=f"{lake_disk}/")}

    def test_it_fails_plainly_and_leaves_only_an_orphan_that_maintenance_deletes(
            self, lake_disk, tick, data_dir, instance, resources, master_loaded, monkeypatch):
        monkeypatch.setattr(disk_space, "require", lambda needs, what: None)
        warehouse = resources["warehouse"]
        land(data_dir, days=1)
        before, lake_before = files_in(data_dir), files_in(lake_disk)
        filler = fill(lake_disk, leave=0)
        (request,) = tick().run_requests

        failed = run_request(instance, resources, request)
        message = plain_failure(failed, "OutOfSpace")
        assert f"not enough disk space for loading {DAY}: it needs about " in message
        assert f"on the file system of {lake_disk}" in message and "No space left on device" in message

        filler.unlink()
        never_loaded(data_dir, warehouse, before)  # the archive copy of the version that never loaded went
        left = {str(lake_disk / name) for name in files_in(lake_disk) - lake_before}
        with warehouse.get_connection() as conn:  # what the write left is an orphan the nightly maintenance deletes
            orphans = {path for (path,) in conn.execute(
                "CALL ducklake_delete_orphaned_files('lake', dry_run => true, older_than => now() + INTERVAL 1 DAY)")
                .fetchall()}
        assert left == orphans and len(left) <= 1, (left, orphans)

        assert run_request(instance, resources, retried(tick)).success
        loaded_once(data_dir, warehouse)
