"""A bad day, file by file: each corpus file gets its documented outcome, and nothing else changes.

Never a crash as the only message, never a partial load, never damage to what was loaded before.
"""

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.sample_data.land import land
from platform_assets_tests.conftest import (
    ALL_CHECKS as CHECKS,
    lake,
    landing_sensor,
    load_raw,
    raw_sales,
    raw_stores,
    sales_files,
)
from platform_assets_tests.fixtures.bad_files import corpus

ASSETS = [raw_stores, raw_sales, cleaned_sales, sales_features]
ADVISORY = {"batch_size_near_trailing_median", "open_share_of_regular_days", "cleaned_keeps_up_with_raw"}
GENERATED = Path(__file__).parent / "fixtures" / "bad_files" / "generated"
CASES = corpus.corpus()


@pytest.fixture(scope="module")
def corpus_files() -> dict[str, Path]:
    """The corpus written where a reader can open it after a test run (git ignores it)."""
    return corpus.write(GENERATED)


@pytest.fixture
def day_before(data_dir, instance, resources):
    """The store master and the day before the corpus day, through every layer."""
    (landed,) = land(data_dir, first=corpus.DAY.replace(day=corpus.DAY.day - 1), days=1)[1:]
    instance.add_dynamic_partitions(sales_files.name, [landed.path.name])
    assert load_raw(instance, resources).success
    assert run(instance, resources, landed.path.name).success
    return landed.path.name


def run(instance, resources, partition: str) -> dg.ExecuteInProcessResult:
    keys = [raw_sales.key, cleaned_sales.key, sales_features.key]
    selection = dg.AssetSelection.assets(*keys) | dg.AssetSelection.checks_for_assets(*keys)
    return dg.materialize([*ASSETS, *CHECKS], selection=selection, partition_key=partition,
                          instance=instance, resources=resources, raise_on_error=False)


def fingerprint(data_dir: Path, excluding: str) -> str:
    """Every table's rows except those of the file under test (and the ledger's note of it)."""
    with lake(data_dir) as conn:
        tables = conn.sql("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                          "ORDER BY 1").fetchall()
        rows = {t: sorted(map(repr, conn.sql(f"SELECT * FROM {t}").fetchall())) for (t,) in tables}
    return hashlib.sha256(repr({t: [r for r in rs if excluding not in r] for t, rs in rows.items()}).encode()).hexdigest()


def blocking_failures(result) -> set[str]:
    return {e.check_name for e in result.get_asset_check_evaluations()
            if not e.passed and e.check_name not in ADVISORY}


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_each_bad_file_gets_its_documented_outcome(case_name, corpus_files, day_before, data_dir, instance,
                                                   resources):
    case = CASES[case_name]
    landed = data_dir / "landing" / case.name
    landed.write_bytes(corpus_files[case_name].read_bytes())
    instance.add_dynamic_partitions(sales_files.name, [case.name])
    before = fingerprint(data_dir, case.name)

    result = run(instance, resources, case.name)

    with lake(data_dir) as conn:
        loaded = conn.execute("SELECT count(*) FROM raw.sales WHERE _source_file = ?", [case.name]).fetchall()[0][0]
        features = conn.sql("SELECT count(DISTINCT date) FROM features.sales_features").fetchall()[0][0]
    if case.outcome == "quarantined":
        assert not result.success
        message = result.failure_data_for_node("raw__sales").error.message
        assert f"{case.name} was quarantined, nothing was loaded" in message and case.detail in message
        assert "Traceback" not in message
        assert (data_dir / "quarantine" / case.name).read_bytes() == case.content  # kept byte for byte
        assert case.detail in (data_dir / "quarantine" / f"{case.name}.reason.txt").read_text()
        assert loaded == 0 and fingerprint(data_dir, case.name) == before
    elif case.outcome == "fails_check":
        assert blocking_failures(result) == {case.detail}
        assert loaded == len(case.content.splitlines()) - 1  # all of it or nothing: here all of it
        assert {e.asset_key for e in result.get_asset_materialization_events()} == {raw_sales.key}
        assert features == 1  # the good day before; nothing of this file flowed downstream
    else:
        assert result.success and not blocking_failures(result)
        assert loaded == int(case.detail)
        assert features > 1
    assert not landed.exists()  # archived or quarantined: nothing is left lying in landing/


def test_the_same_file_under_two_names_is_loaded_once(corpus_files, day_before, data_dir, instance, landing,
                                                      monkeypatch):
    monkeypatch.setenv("PLATFORM_LANDING_QUIET_SECONDS", "0")  # written by this test just now
    content = corpus.good_day()
    for name in ("sales_2013-01-09.csv", "sales_2013-01-09_2013-01-09.csv"):
        (data_dir / "landing" / name).write_bytes(content)
    context = dg.build_sensor_context(instance=instance, resources={"landing": landing})
    result = landing_sensor(context)
    assert [r.partition_key for r in result.run_requests] == ["sales_2013-01-09.csv"]
    reason = (data_dir / "quarantine" / "sales_2013-01-09_2013-01-09.csv.reason.txt").read_text()
    assert "sales_2013-01-09.csv" in reason


def test_materializing_a_layer_before_anything_was_loaded_says_so(resources, instance):
    """Someone clicks Materialize on an empty warehouse: a plain message, not a stack trace."""
    for asset in (cleaned_sales, sales_features):
        result = dg.materialize([asset], resources=resources, instance=instance, raise_on_error=False)
        message = result.failure_data_for_node(asset.op.name).error.message
        assert "has nothing to build from yet" in message and "exist. Load a file first" in message
        assert "Catalog Error" not in message
