"""Soda contracts as Dagster asset checks: each defect fails exactly its check and stops the flow."""

import hashlib
import shutil
from pathlib import Path

import dagster as dg
import pytest

from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.datasets import load_datasets
from platform_assets.quality.contracts import ContractError, load_contract
from platform_assets.quality.soda_checks import contract_checks
from platform_assets.sample_data.land import land
from platform_assets.settings import Settings
from platform_assets_tests.conftest import (
    ALL_CHECKS as CHECKS,
    causes,
    defined,
    lake,
    raw_sales,
    raw_stores,
    recheck_requests,
    run_checks_only,
    sales_files,
)

CONTRACTS = Settings.from_env().contracts_dir
ASSETS = [raw_stores, raw_sales, cleaned_sales, sales_features]
HEADER = "Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday"
DAY = "2013-01-09"  # a Wednesday, after the three days the fixture loads
GOOD = [f"{store},3,{DAY},{5000 + store},{500 + store},1,0,0,0" for store in range(1, 1116)]
ADVISORY = {"batch_size_near_trailing_median", "open_share_of_regular_days", "cleaned_keeps_up_with_raw"}


def run(instance, resources, partition=None, assets=ASSETS) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` (all but raw/stores when a sales partition is given) with their checks."""
    keys = [a.key for a in assets if not (partition and a is raw_stores)]
    selection = dg.AssetSelection.assets(*keys) | dg.AssetSelection.checks_for_assets(*keys)
    return dg.materialize([*ASSETS, *CHECKS], selection=selection, partition_key=partition,
                          instance=instance, resources=resources, raise_on_error=False)


def _checks_of(assets):
    keys = {a.key for a in assets}
    return [spec for c in CHECKS for spec in c.check_specs if spec.asset_key in keys]


def failed(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()
            if not e.passed}


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def fingerprint(data_dir: Path) -> str:
    with lake(data_dir) as conn:
        rows = [conn.sql(f"SELECT * EXCLUDE (_updated_at) FROM {t} ORDER BY ALL").fetchall()
                for t in ("cleaned.sales", "features.sales_features")]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture
def pipeline(data_dir, resources, instance):
    """Store master and three clean days through every layer and every check."""
    land(data_dir, days=3)
    names = sorted(p.name for p in (data_dir / "landing").glob("sales_*.csv"))
    instance.add_dynamic_partitions(sales_files.name, [*names, f"sales_{DAY}.csv"])
    first = run(instance, resources, assets=[raw_stores])
    assert first.success, failed(first)
    for name in names:
        result = run(instance, resources, name)
        assert result.success and not failed(result).keys() - {f"raw/sales:{c}" for c in ADVISORY}, failed(result)

    def land_batch(lines: list[str]) -> dg.ExecuteInProcessResult:
        (data_dir / "landing" / f"sales_{DAY}.csv").write_text("\n".join([HEADER, *lines]) + "\n")
        before = fingerprint(data_dir)
        result = run(instance, resources, f"sales_{DAY}.csv")
        result.downstream_unchanged = fingerprint(data_dir) == before
        return result

    return land_batch


def test_a_clean_batch_passes_every_check(pipeline):
    result = pipeline(GOOD)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(_checks_of([raw_sales, cleaned_sales, sales_features]))
    assert [e.check_name for e in evaluations if not e.passed] == []
    assert materialized(result) == {"raw/sales", "cleaned/sales", "features/sales_features"}


DEFECTS = {
    # name: (rows, the one blocking check that must fail, failing-row count Soda reports)
    "null_key": (GOOD[:-1] + [f",3,{DAY},10,1,1,0,0,0"], "store_not_missing", ("missing_count", 1)),
    "out_of_range_value": (GOOD[:-1] + [f"1115,3,{DAY},10,1,1,5,0,0"], "promo_is_flag", ("invalid_count", 1)),
    "negative_sales": (GOOD[:-2] + [f"1114,3,{DAY},-10,1,1,0,0,0", f"1115,3,{DAY},-3,1,1,0,0,0"],
                       "sales_not_negative", ("invalid_count", 2)),
    "duplicate_key": (GOOD + [GOOD[0]], "store_date_unique_in_batch", ("failed_rows_count", 1)),
    "closed_day_with_sales": (GOOD[:-1] + [f"1115,3,{DAY},700,70,0,0,0,0"], "no_sales_when_closed",
                              ("failed_rows_count", 1)),
    "empty_batch": ([], "batch_not_empty", None),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_fails_exactly_its_check_and_stops_the_flow(defect, pipeline):
    rows, check, count = DEFECTS[defect]
    result = pipeline(rows)

    assert not result.success
    blocking = {k for k in failed(result) if k.split(":")[1] not in ADVISORY}
    assert blocking == {f"raw/sales:{check}"}
    evaluation = failed(result)[f"raw/sales:{check}"]
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    if count is not None:
        metric, expected = count
        assert evaluation.metadata[metric].value == expected
        assert evaluation.metadata["failing_rows"].value.count("\n| ") >= min(expected, 5)
    assert materialized(result) == {"raw/sales"}  # cleaned and features did not run ...
    assert result.downstream_unchanged  # ... and their tables hold what they held


def test_an_unknown_store_fails_referential_integrity(pipeline, data_dir, instance, resources):
    (archived,) = (data_dir / "archive" / "store.csv").iterdir()
    master = archived.read_text().splitlines()
    (data_dir / "landing" / "store.csv").write_text("\n".join(l for l in master if not l.startswith("7,")) + "\n")
    assert run(instance, resources, assets=[raw_stores]).success
    result = pipeline(GOOD)
    assert {k for k in failed(result) if k.split(":")[1] not in ADVISORY} == {"raw/sales:store_in_master"}
    evaluation = failed(result)["raw/sales:store_in_master"]
    assert evaluation.metadata["invalid_count"].value == 1
    assert f"| 7 | 3 | {DAY} | 5007 |" in evaluation.metadata["failing_rows"].value


def test_file_level_defects_never_reach_a_table_or_a_check(pipeline, data_dir):
    """A missing column or a value of the wrong type is refused by the loader: quarantined, nothing checked."""
    for lines in ([",".join(HEADER.split(",")[:-1])] + [g.rsplit(",", 1)[0] for g in GOOD[:3]],
                  GOOD[:2] + [f"3,3,{DAY},lots,1,1,0,0,0"]):
        (data_dir / "quarantine").mkdir(exist_ok=True)
        result = pipeline(lines[1:] if lines[0].startswith("Store,") else lines)
        assert not result.success and result.get_asset_check_evaluations() == []
        assert materialized(result) == set() and result.downstream_unchanged
        assert (data_dir / "quarantine" / f"sales_{DAY}.csv.reason.txt").exists()
        (data_dir / "quarantine" / f"sales_{DAY}.csv.reason.txt").unlink()
        (data_dir / "quarantine" / f"sales_{DAY}.csv").unlink()


def test_table_drift_fails_the_schema_check(pipeline, instance, resources, data_dir):
    """A table whose columns drifted from the contract (missing column, wrong type) fails its schema check."""
    with lake(data_dir, read_only=False) as conn:
        conn.execute("ALTER TABLE raw.stores DROP COLUMN CompetitionOpenSinceYear")
        conn.execute("ALTER TABLE raw.sales ALTER COLUMN Promo TYPE DOUBLE")  # a lake allows widening only
    stores = dg.materialize([*ASSETS, *CHECKS], instance=instance, resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.checks_for_assets(raw_stores))
    assert set(failed(stores)) == {"raw/stores:raw_stores_schema"}
    assert "CompetitionOpenSinceYear" in failed(stores)["raw/stores:raw_stores_schema"].metadata["summary"].value
    sales = pipeline(GOOD)
    blocking = {k for k in failed(sales) if k.split(":")[1] not in ADVISORY}
    assert blocking == {"raw/sales:raw_sales_schema"}


def bypass_raw_checks(data_dir: Path, name: str) -> None:
    """Mark a file verified although its raw checks failed: what a wrong raw check would let through."""
    with lake(data_dir, read_only=False) as conn:
        conn.execute("UPDATE ops.landed_files SET verified_at = now() WHERE file_name = ? AND status = 'loaded'", [name])


def test_a_manual_materialization_downstream_never_reads_a_batch_whose_checks_failed(
        pipeline, instance, resources, data_dir):
    assert not pipeline(GOOD[:-1] + [f"1115,3,{DAY},-10,1,1,0,0,0"]).success  # raw check fails
    result = run(instance, resources, assets=[cleaned_sales, sales_features])  # someone clicks Materialize
    assert result.success and materialized(result) == {"cleaned/sales", "features/sales_features"}
    with lake(data_dir) as conn:
        for table in ("cleaned.sales", "features.sales_features"):
            assert conn.sql(f"SELECT count(*) FROM {table} WHERE date = '{DAY}'").fetchall() == [(0,)]
        assert conn.sql("SELECT count(*) FROM raw.sales WHERE Sales < 0").fetchall() == [(1,)]  # kept in raw

    fixed = pipeline(GOOD)  # the corrected file flows
    assert fixed.success and materialized(fixed) == {"raw/sales", "cleaned/sales", "features/sales_features"}
    with lake(data_dir) as conn:
        assert conn.sql(f"SELECT count(*) FROM features.sales_features WHERE date = '{DAY}'").fetchall() == [(1115,)]


def test_cleaned_checks_guard_features_when_raw_checks_are_bypassed(pipeline, instance, resources, data_dir):
    pipeline(GOOD[:-1] + [f"1115,3,{DAY},700,70,0,0,0,0"])  # raw check fails; cleaned did not run
    bypass_raw_checks(data_dir, f"sales_{DAY}.csv")
    before = fingerprint(data_dir)
    result = run(instance, resources, assets=[cleaned_sales, sales_features])  # someone runs cleaned by hand
    assert materialized(result) == {"cleaned/sales"}
    assert {k for k in failed(result) if k.split(":")[1] not in ADVISORY} == {
        "cleaned/sales:no_sales_when_closed", "cleaned/sales:no_quality_issue"}
    assert failed(result)["cleaned/sales:no_quality_issue"].metadata["failed_rows_count"].value == 1
    with lake(data_dir) as conn:
        assert conn.sql(f"SELECT count(*) FROM features.sales_features WHERE date = '{DAY}'").fetchall() == [(0,)]
    assert fingerprint(data_dir) != before  # cleaned changed, features did not run


def test_a_key_written_twice_into_a_layer_fails_its_uniqueness_check_naming_the_key(pipeline, instance, resources,
                                                                                 data_dir):
    with lake(data_dir, read_only=False) as conn:  # a bug in a transform, or a hand-made insert
        for table in ("cleaned.sales", "features.sales_features"):
            conn.execute(f"INSERT INTO {table} SELECT * REPLACE (now() AS _updated_at) FROM {table} "
                         "WHERE store = 7 AND date = '2013-01-02'")
    keys = [cleaned_sales.key, sales_features.key]
    result = dg.materialize([*ASSETS, *CHECKS], selection=dg.AssetSelection.checks_for_assets(*keys),
                            instance=instance, resources=resources, raise_on_error=False)
    for asset in ("cleaned/sales", "features/sales_features"):
        check = failed(result)[f"{asset}:store_date_unique"]
        assert check.metadata["failed_rows_count"].value == 1
        assert "| 7 | 2013-01-02 |" in check.metadata["failing_rows"].value


def test_layer_checks_read_the_rows_not_yet_verified(pipeline, data_dir, instance, resources):
    """Cleaned checks read the rows written since the last passing run; rows that failed are read again."""

    def land_day(day: str, weekday: int, bad_row: bool = False) -> dg.ExecuteInProcessResult:
        lines = [g.replace(DAY, day).replace(",3,", f",{weekday},", 1) for g in GOOD]
        if bad_row:
            lines[-1] = f"1115,{weekday},{day},700,70,0,0,0,0"
        name = f"sales_{day}.csv"
        (data_dir / "landing" / name).write_text("\n".join([HEADER, *lines]) + "\n")
        instance.add_dynamic_partitions(sales_files.name, [name])
        return run(instance, resources, name)

    def cleaned_check(result, name: str) -> dg.AssetCheckEvaluation:
        (evaluation,) = [e for e in result.get_asset_check_evaluations()
                         if e.asset_key == cleaned_sales.key and e.check_name == name]
        return evaluation

    pipeline(GOOD[:-1] + [f"1115,3,{DAY},700,70,0,0,0,0"])  # raw check fails, cleaned did not run
    bypass_raw_checks(data_dir, f"sales_{DAY}.csv")
    forced = run(instance, resources, assets=[cleaned_sales])  # someone runs cleaned by hand
    assert cleaned_check(forced, "no_quality_issue").metadata["failed_rows_count"].value == 1

    next_day = land_day("2013-01-10", 4)  # a good day: the bad row of the day before is read again
    assert not cleaned_check(next_day, "no_quality_issue").passed
    assert cleaned_check(next_day, "sales_not_negative").metadata["check_rows_tested"].value == 2 * 1115
    assert "features/sales_features" not in materialized(next_day)

    fixed = pipeline(GOOD)  # the corrected file: both unverified days are read and pass
    assert cleaned_check(fixed, "no_quality_issue").passed
    assert cleaned_check(fixed, "sales_not_negative").metadata["check_rows_tested"].value == 2 * 1115
    assert "features/sales_features" in materialized(fixed)

    after = land_day("2013-01-11", 5)  # verified rows are not read again: only the new day
    assert after.success and not {k for k in failed(after) if k.split(":")[1] not in ADVISORY}
    assert cleaned_check(after, "sales_not_negative").metadata["check_rows_tested"].value == 1115


def test_checks_on_a_partition_see_only_that_partition(pipeline, data_dir, instance, resources):
    assert not pipeline(GOOD + [GOOD[0]]).success  # a duplicate in this batch
    (data_dir / "landing" / "sales_2013-01-10.csv").write_text(
        "\n".join([HEADER, *(g.replace(DAY, "2013-01-10").replace(",3,", ",4,", 1) for g in GOOD)]) + "\n")
    instance.add_dynamic_partitions(sales_files.name, ["sales_2013-01-10.csv"])
    result = run(instance, resources, "sales_2013-01-10.csv", assets=[raw_sales])
    assert result.success and "raw/sales:store_date_unique_in_batch" not in failed(result)
    rows_tested = {e.check_name: e.metadata.get("check_rows_tested") for e in result.get_asset_check_evaluations()}
    assert rows_tested["sales_not_negative"].value == 1115


def stores_checks(defs_dir) -> list[dg.AssetCheckSpec]:
    """The check specs of the store master as declared in ``defs_dir`` (a copy of the code location's)."""
    _, checks = load_datasets(defs_dir).assets_and_checks()
    return [s for c in checks for s in c.check_specs if s.asset_key == raw_stores.key]


@pytest.fixture
def defs_copy(tmp_path):
    copy = tmp_path / "defs"
    shutil.copytree(Settings.from_env().defs_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_check_specs_follow_the_yaml(defs_copy):
    contract = defs_copy / "stores" / "contract.yml"
    contract.write_text(contract.read_text().replace("checks:\n", (
        "checks:\n- row_count:\n    qualifier: at_least_a_thousand_stores\n"
        "    name: \"The master lists at least 1,000 stores.\"\n    threshold: {must_be_greater_than: 999}\n"), 1))
    specs = {s.key.name: s for s in stores_checks(defs_copy)}
    assert specs["at_least_a_thousand_stores"].description == "The master lists at least 1,000 stores."
    assert specs["at_least_a_thousand_stores"].blocking
    # and what the platform adds from defs.yaml: the schema, a check per required column
    assert {"raw_stores_schema", "store_not_missing", "store_type_not_missing", "assortment_not_missing"} <= set(specs)
    warn = {s.key.name: s for c in CHECKS for s in c.check_specs}["open_share_of_regular_days"]
    assert not warn.blocking


@pytest.mark.parametrize("mangle, message", [
    (lambda t: t.replace("checks:\n", "checks:\n  - [unclosed\n", 1), "cannot be read as YAML"),
    (lambda t: t.replace("qualifier: store_unique", "qualifier: Store Unique"), "needs a snake_case 'qualifier'"),
    (lambda t: t.replace("- duplicate:", "- duplicated:"), "not a valid Soda contract at $.checks[2]"),
    (lambda t: t.replace("qualifier: store_type_code", "qualifier: store_unique"), "repeated: store_unique"),
    (lambda t: t.replace("- name: StoreType", "- name: ShopType"), "column 'ShopType' is not a column of raw.stores"),
])
def test_a_bad_dataset_contract_fails_at_load_time_naming_file_and_problem(defs_copy, mangle, message):
    path = defs_copy / "stores" / "contract.yml"
    path.write_text(mangle(path.read_text()))
    with pytest.raises(Exception) as error:
        stores_checks(defs_copy)
    told = causes(error.value)  # what `dg check defs` and the code location's load print
    assert str(path) in told and message in told, told


def test_a_bad_layer_contract_fails_at_load_time_naming_file_and_problem(tmp_path):
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, contracts)
    path = contracts / "cleaned_sales.yml"
    path.write_text(path.read_text().replace("dataset: warehouse/cleaned/sales", "dataset: warehouse/cleaned/shops"))
    with pytest.raises(ContractError) as error:
        contract_checks(contracts, ASSETS)
    assert str(path) in str(error.value) and "is not an asset" in str(error.value)


def test_every_contract_loads_and_names_its_table():
    tables = {load_contract(p).table for p in CONTRACTS.glob("*.yml")}
    assert tables == {"cleaned.sales", "features.sales_features"}  # the landed datasets' are beside their defs.yaml
    assert {k.asset_key.to_user_string() for c in CHECKS for k in c.check_keys} == {
        "raw/sales", "raw/stores", "raw/store_states", "raw/weather", "cleaned/sales", "features/sales_features"}


def test_rows_outside_the_days_of_the_file_name_fail_and_never_overwrite_those_days(pipeline, data_dir):
    """sales_2013-01-09.csv holding the rows of 2013-01-02 (a Wednesday too): a mislabeled file."""
    with lake(data_dir) as conn:
        before = conn.sql("SELECT sum(sales) FROM cleaned.sales WHERE date = '2013-01-02'").fetchall()
    result = pipeline([g.replace(DAY, "2013-01-02") for g in GOOD])
    assert {k for k in failed(result) if k.split(":")[1] not in ADVISORY} == {"raw/sales:dates_within_file_name"}
    evaluation = failed(result)["raw/sales:dates_within_file_name"]
    assert evaluation.metadata["failed_rows_count"].value == 1115
    assert "| 1 | 3 | 2013-01-02 |" in evaluation.metadata["failing_rows"].value
    assert materialized(result) == {"raw/sales"} and result.downstream_unchanged
    with lake(data_dir) as conn:
        assert conn.sql("SELECT sum(sales) FROM cleaned.sales WHERE date = '2013-01-02'").fetchall() == before


def test_a_correction_still_wins_after_the_older_file_is_loaded_again(pipeline, data_dir, instance, resources):
    """Precedence is by when a file landed, not when it was last loaded (e.g. "Materialize all" in the UI)."""
    (older,) = (data_dir / "archive" / "sales_2013-01-02.csv").iterdir()
    header, *rows = older.read_text().splitlines()
    open_days = [r.split(",") for r in rows if r.split(",")[5] == "1"]
    corrected = [",".join([*f[:3], str(int(f[3]) + 1), *f[4:]]) for f in open_days]
    correction = "sales_2013-01-02_2013-01-03.csv"  # covers the day again, every open store's sales one higher
    (data_dir / "landing" / correction).write_text("\n".join([header, *corrected]) + "\n")
    instance.add_dynamic_partitions(sales_files.name, [correction])

    def cleaned_total() -> int:
        with lake(data_dir) as conn:
            return conn.sql("SELECT sum(sales) FROM cleaned.sales WHERE date = '2013-01-02'").fetchall()[0][0]

    original = cleaned_total()
    assert run(instance, resources, correction).success
    assert cleaned_total() == original + len(open_days)
    assert run(instance, resources, "sales_2013-01-02.csv").success  # the older file, re-materialized
    assert cleaned_total() == original + len(open_days)  # the correction still wins


def test_a_fixed_store_master_rechecks_the_sales_files_it_failed_and_the_flow_resumes(
        pipeline, data_dir, instance, resources):
    from platform_assets.automation.conditions import with_automation

    defs = dg.Definitions(assets=with_automation(ASSETS), asset_checks=CHECKS, resources=resources)
    automation = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # running all along
    (archived,) = (data_dir / "archive" / "store.csv").iterdir()
    good_master = archived.read_bytes()
    (data_dir / "landing" / "store.csv").write_text(good_master.decode().splitlines()[0] + "\n")  # header only
    assert not run(instance, resources, assets=[raw_stores]).success  # batch_not_empty fails
    result = pipeline(GOOD)
    assert "raw/sales:store_in_master" in failed(result) and materialized(result) == {"raw/sales"}

    _, cursor = recheck_requests(instance)  # the sensor's first look: the bad master, rechecks are pointless
    (data_dir / "landing" / "store.csv").write_bytes(good_master)  # the fix
    assert run(instance, resources, assets=[raw_stores]).success
    requests, _ = recheck_requests(instance, cursor)
    assert [(r.partition_key, r.job_name) for r in requests] == [(f"sales_{DAY}.csv", "recheck_sales")]

    (request,) = requests
    recheck = run_checks_only(defs, instance, request)
    assert recheck.success and materialized(recheck) == set()  # checks only, nothing reloaded
    automation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=automation.cursor)
    assert automation.get_num_requested(cleaned_sales.key) == 1  # the line is no longer stopped
    downstream = run(instance, resources, assets=[cleaned_sales, sales_features])
    assert downstream.success
    with lake(data_dir) as conn:
        assert conn.sql(f"SELECT count(*) FROM features.sales_features WHERE date = '{DAY}'").fetchall() == [(1115,)]


def test_a_recheck_that_passes_after_the_layers_held_its_batch_back_builds_them_again(
        pipeline, data_dir, instance, resources):
    """The fixed master carried through cleaned and features in its own run, before the recheck got the writers'
    pool: the layers held the failed batch back, and no new data would ever make them look again (found by CI)."""
    from platform_assets.automation.conditions import with_automation

    defs = dg.Definitions(assets=with_automation(ASSETS), asset_checks=CHECKS, resources=resources)
    (archived,) = (data_dir / "archive" / "store.csv").iterdir()
    good_master = archived.read_bytes()
    (data_dir / "landing" / "store.csv").write_text(good_master.decode().splitlines()[0] + "\n")  # header only
    assert not run(instance, resources, assets=[raw_stores]).success
    assert "raw/sales:store_in_master" in failed(pipeline(GOOD))
    _, cursor = recheck_requests(instance)
    (data_dir / "landing" / "store.csv").write_bytes(good_master)
    assert run(instance, resources, assets=[raw_stores]).success
    assert run(instance, resources, assets=[cleaned_sales, sales_features]).success  # the carried-through run
    automation = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    (request,), cursor = recheck_requests(instance, cursor)
    assert run_checks_only(defs, instance, request).success
    automation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=automation.cursor)
    assert automation.get_num_requested(cleaned_sales.key) == 0  # nothing new upstream: automation alone waits

    (follow_up,), cursor = recheck_requests(instance, cursor)
    assert (follow_up.job_name, set(follow_up.asset_selection)) == (
        "incremental_update", {cleaned_sales.key, sales_features.key})
    assert run(instance, resources, assets=[cleaned_sales, sales_features]).success
    with lake(data_dir) as conn:
        assert conn.sql(f"SELECT count(*) FROM features.sales_features WHERE date = '{DAY}'").fetchall() == [(1115,)]
    assert recheck_requests(instance, cursor)[0] == []  # built since: asked once


def test_a_fixed_store_master_rechecks_a_table_file_it_failed(data_dir, instance, resources):
    """store_states.csv replaces its table and loads_after raw/stores: its failed check is re-run, not only files'."""
    store_states = defined("raw/store_states")
    land(data_dir, days=1, weather=True)
    master = (data_dir / "landing" / "store.csv").read_text().splitlines()
    (data_dir / "landing" / "store.csv").write_text("\n".join(master[:-1]) + "\n")  # store 1115 left out
    assets = [raw_stores, store_states]
    checks = [c for c in CHECKS if {k.asset_key for k in c.check_keys} <= {raw_stores.key, store_states.key}]

    def materialize(asset) -> dg.ExecuteInProcessResult:
        selection = dg.AssetSelection.assets(asset) | dg.AssetSelection.checks_for_assets(asset)
        return dg.materialize([*assets, *checks], selection=selection, instance=instance, resources=resources,
                              raise_on_error=False)

    def verified() -> set[str]:
        with lake(data_dir) as conn:
            return {name for name, *_ in conn.sql("SELECT * FROM ops.landed_files WHERE verified_at IS NOT NULL "
                                                  "AND status = 'loaded'").fetchall()}

    assert materialize(raw_stores).success
    result = materialize(store_states)
    assert set(failed(result)) == {"raw/store_states:store_known"}
    assert "store_states.csv" not in verified()

    _, cursor = recheck_requests(instance)  # the sensor's first look: the master it failed against
    (data_dir / "landing" / "store.csv").write_text("\n".join(master) + "\n")  # the fix: the full master
    assert materialize(raw_stores).success
    (request,), _ = recheck_requests(instance, cursor)
    assert (request.partition_key, request.job_name) == (None, "recheck_store_states")
    defs = dg.Definitions(assets=assets, asset_checks=checks, resources=resources)
    recheck = run_checks_only(defs, instance, request)
    assert recheck.success and materialized(recheck) == set()  # checks only, nothing reloaded
    assert "store_states.csv" in verified()
