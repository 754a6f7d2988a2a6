"""Shared fixtures: a temp data dir, real resources and a real (ephemeral) Dagster instance."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.storage.tags import SENSOR_NAME_TAG

from platform_assets import definitions as platform
from platform_assets.resources import LandingZone, ModelStore, Warehouse
from platform_assets.sample_data.land import land


def defined(key: str) -> dg.AssetsDefinition:
    """An asset of the code location by key, as Dagster runs it (the landed ones are built from defs.yaml)."""
    (asset,) = [a for a in platform.assets if a.key == dg.AssetKey.from_user_string(key)]
    return asset


raw_sales, raw_stores = defined("raw/sales"), defined("raw/stores")
sales_files = raw_sales.partitions_def
ALL_CHECKS = platform.checks  # every contract's checks: the landed datasets' and the layers'
RAW_CHECKS = [c for c in ALL_CHECKS if {k.asset_key for k in c.check_keys} <= {raw_stores.key, raw_sales.key}]
(SALES_CONTRACT,) = [c for c in ALL_CHECKS if {k.asset_key for k in c.check_keys} == {raw_sales.key}]
landing_sensor = platform.defs.resolve_sensor_def("landing_sensor")
recheck_sensor = platform.defs.resolve_sensor_def("recheck_landed_files")


def load_raw(instance, resources, partition: str | None = None, tags=None) -> dg.ExecuteInProcessResult:
    """What the landing sensor's run does: raw/stores, or one raw/sales partition, with its contract checks.

    The checks are what verify the batch: downstream layers read only verified files.
    """
    target = raw_sales if partition else raw_stores
    if partition and not instance.has_dynamic_partition(sales_files.name, partition):
        instance.add_dynamic_partitions(sales_files.name, [partition])
    selection = dg.AssetSelection.assets(target) | dg.AssetSelection.checks_for_assets(target)
    return dg.materialize([raw_stores, raw_sales, *RAW_CHECKS], selection=selection, partition_key=partition,
                          resources=resources, instance=instance, raise_on_error=False, tags=tags)


def recheck_requests(instance, cursor: str | None = None) -> tuple[list[dg.RunRequest], str | None]:
    """One tick of the recheck sensor as the daemon evaluates it: its run requests resolved against their jobs."""
    from dagster._core.definitions.partitions.context import partition_loading_context

    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=platform.defs)
    with partition_loading_context(dynamic_partitions_store=instance):  # the daemon's: its instance's partitions
        result = recheck_sensor.evaluate_tick(context)
    return list(result.run_requests or []), result.cursor


def run_checks_only(defs: dg.Definitions, instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Run a recheck request as the daemon does: its checks only, nothing loaded."""
    return defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(), asset_check_selection=set(request.asset_check_keys),
    ).execute_in_process(instance=instance, partition_key=request.partition_key,
                         tags={SENSOR_NAME_TAG: recheck_sensor.name})


def causes(error: BaseException) -> str:
    """An error and what caused it, as Dagster prints a failed load ("The above exception was caused by ...")."""
    told = []
    while error is not None:
        told.append(str(error))
        error = error.__cause__
    return "\n".join(told)


def files_in(folder: Path) -> set[str]:
    """Every file under ``folder`` (relative paths) but SQLite's -wal/-shm, which come and go with connections."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def landing(data_dir: Path) -> LandingZone:
    return LandingZone(data_dir=str(data_dir))


@contextmanager
def lake(data_dir: Path, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """The test's lake, as a reader (or another writer) beside the runs would open it."""
    with Warehouse.embedded(data_dir, read_only=read_only).get_connection() as conn:
        yield conn


@pytest.fixture
def resources(landing: LandingZone, data_dir: Path) -> dict:
    return {"landing": landing, "warehouse": Warehouse.embedded(data_dir),
            "models": ModelStore(models_dir=str(data_dir / "models"))}


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def load(instance, resources):
    """Load raw/stores (no partition) or one raw/sales partition with its checks; returns the result."""
    return lambda partition=None: load_raw(instance, resources, partition)


@pytest.fixture
def query(data_dir: Path):
    """Run SQL read-only against the test's lake (None if it does not exist yet)."""

    def _query(sql: str, params=None):
        if not (data_dir / "lake.sqlite").exists():
            return None
        with lake(data_dir) as conn:
            return conn.execute(sql, params or []).fetchall()

    return _query


@pytest.fixture(scope="session")
def full_history(tmp_path_factory) -> Path:
    """The whole generated history landed once per test session (store.csv + one sales file)."""
    data_dir = tmp_path_factory.mktemp("full") / "data"
    land(data_dir, batch="all")
    return data_dir


@pytest.fixture
def mailbox():
    from platform_assets_tests.fixtures.receivers import Mailbox

    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def webhook():
    from platform_assets_tests.fixtures.receivers import Webhook

    hook = Webhook().start()
    yield hook
    hook.stop()
