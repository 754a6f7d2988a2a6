"""Downstream layers follow raw by themselves, once, and never past a failing blocking check."""

import dagster as dg
import pytest
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationPlanned
from dagster._core.events import DagsterEvent, DagsterEventType

from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.automation.conditions import with_automation
from platform_assets.sample_data.land import land
from platform_assets_tests.conftest import (
    ALL_CHECKS as CHECKS,
    SALES_CONTRACT,
    lake,
    raw_sales,
    raw_stores,
    recheck_requests,
    run_checks_only,
    sales_files,
)

ASSETS = with_automation([raw_stores, raw_sales, cleaned_sales, sales_features])
HEADER = "Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday"


@pytest.fixture
def automation(instance, resources):
    defs = dg.Definitions(assets=ASSETS, asset_checks=CHECKS, resources=resources)
    state = {"cursor": None}

    def evaluate() -> set[str]:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=state["cursor"])
        state["cursor"] = result.cursor
        return {key.to_user_string() for key in ASSETS_KEYS if result.get_num_requested(key)}

    return evaluate


ASSETS_KEYS = [a.key for a in ASSETS]


def load(instance, resources, partition=None, checks=True) -> dg.ExecuteInProcessResult:
    """What the landing sensor's run does: the raw asset and (unless ``checks`` is False) its checks."""
    target = raw_sales if partition else raw_stores
    selection = dg.AssetSelection.assets(target)
    if checks:
        selection |= dg.AssetSelection.checks_for_assets(target)
    if partition:
        instance.add_dynamic_partitions(sales_files.name, [partition])
    return dg.materialize([*ASSETS, *CHECKS], selection=selection, partition_key=partition,
                          instance=instance, resources=resources, raise_on_error=False)


def test_a_burst_of_files_gives_one_downstream_run_per_layer(automation, data_dir, instance, resources):
    land(data_dir, days=5)
    assert automation() == set()  # nothing loaded yet
    assert load(instance, resources).success
    for day in range(1, 6):
        assert load(instance, resources, f"sales_2013-01-0{day}.csv").success
    assert automation() == {"cleaned/sales", "features/sales_features"}  # one request each, for 6 loads
    assert automation() == set()  # handled: not requested again


def test_the_store_master_alone_starts_nothing(automation, data_dir, instance, resources):
    """Nothing to clean until a sales file is loaded: no doomed downstream run (found by the soak)."""
    land(data_dir, days=1)
    assert automation() == set()
    assert load(instance, resources).success
    assert automation() == set()
    assert load(instance, resources, "sales_2013-01-01.csv").success
    assert automation() == {"cleaned/sales", "features/sales_features"}


def test_a_manual_materialization_upstream_is_followed_too(automation, data_dir, instance, resources):
    land(data_dir, days=1)
    assert automation() == set()
    load(instance, resources), load(instance, resources, "sales_2013-01-01.csv")
    assert automation() == {"cleaned/sales", "features/sales_features"}
    downstream = dg.AssetSelection.assets(cleaned_sales, sales_features)
    assert dg.materialize([*ASSETS, *CHECKS], selection=downstream | dg.AssetSelection.checks_for_assets(cleaned_sales, sales_features),
                          instance=instance, resources=resources).success  # the run automation starts
    assert automation() == set()
    assert load(instance, resources, "sales_2013-01-01.csv").success  # someone re-materializes it in the UI
    assert automation() == {"cleaned/sales", "features/sales_features"}


def test_a_file_loaded_between_a_downstream_run_and_the_next_tick_is_followed(automation, data_dir, instance,
                                                                             resources):
    """Found by `make bench-latency`: Dagster's eager() counted such a load as handled by the run before it."""
    land(data_dir, days=2)
    assert automation() == set()
    load(instance, resources), load(instance, resources, "sales_2013-01-01.csv")
    assert automation() == {"cleaned/sales", "features/sales_features"}
    downstream = dg.AssetSelection.assets(cleaned_sales, sales_features)
    assert dg.materialize([*ASSETS, *CHECKS], selection=downstream, instance=instance, resources=resources).success
    assert load(instance, resources, "sales_2013-01-02.csv").success  # lands before automation looks again
    assert automation() == {"cleaned/sales", "features/sales_features"}
    assert automation() == set()


def test_a_failing_blocking_check_upstream_stops_the_flow(automation, data_dir, instance, resources):
    land(data_dir, days=1)
    assert automation() == set()
    assert load(instance, resources).success
    bad = data_dir / "landing" / "sales_2013-01-01.csv"
    bad.write_text(bad.read_text() + "1,2,2013-01-01,-50,1,1,0,0,0\n")  # negative sales, duplicate key
    result = load(instance, resources, "sales_2013-01-01.csv")
    assert not result.success
    assert automation() == set()


def test_a_corrected_file_under_the_same_name_resumes_the_flow(automation, data_dir, instance, resources):
    land(data_dir, days=1)
    assert automation() == set()
    assert load(instance, resources).success
    path = data_dir / "landing" / "sales_2013-01-01.csv"
    good = path.read_text()
    path.write_text(good + "1,2,2013-01-01,-50,1,1,0,0,0\n")  # negative sales
    assert not load(instance, resources, "sales_2013-01-01.csv").success
    assert automation() == set()  # stopped
    path.write_text(good)  # the corrected file, same name
    assert load(instance, resources, "sales_2013-01-01.csv").success
    assert automation() == {"cleaned/sales", "features/sales_features"}  # resumes by itself


def test_a_quarantined_file_does_not_block_later_files(automation, data_dir, instance, resources):
    land(data_dir, days=2)
    assert automation() == set()  # the automation sensor is running before data arrives
    load(instance, resources)
    (data_dir / "landing" / "sales_2013-01-01.csv").write_text("")  # quarantined: its partition stays empty
    assert not load(instance, resources, "sales_2013-01-01.csv").success
    assert load(instance, resources, "sales_2013-01-02.csv").success
    assert automation() == {"cleaned/sales", "features/sales_features"}


def test_a_batch_whose_checks_are_still_running_is_not_followed(automation, data_dir, instance, resources):
    """Found in CI: Dagster counts a partition as no longer in progress once it is materialized, while the
    run goes on to check it. An automation tick in between built cleaned from no verified file (an empty
    table that failed its own check) while the batch's checks were about to fail."""
    land(data_dir, days=1)
    assert automation() == set()  # running before data arrives
    load(instance, resources)
    assert load(instance, resources, "sales_2013-01-01.csv", checks=False).success  # loaded; its checks come next
    checking = instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED))
    plan_raw_checks(instance, checking, "sales_2013-01-01.csv")
    assert automation() == set()  # waits for the verdict


def plan_raw_checks(instance, run: dg.DagsterRun, partition: str) -> None:
    """What a run does when it starts: plan the raw sales checks of its partition."""
    subset = sales_files.empty_subset().with_partition_keys([partition])
    for key in SALES_CONTRACT.check_keys:
        planned = AssetCheckEvaluationPlanned(asset_key=key.asset_key, check_name=key.name, partitions_subset=subset)
        instance.report_dagster_event(
            DagsterEvent(DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value, "__ASSET_JOB",
                         event_specific_data=planned), run.run_id)


def test_a_batch_whose_run_ended_before_its_checks_is_checked_again(automation, data_dir, instance, resources):
    """Found by the restart test in CI: the server stopped while a batch was being checked; its file was
    archived and nothing ever verified it, so it never reached cleaned."""
    land(data_dir, days=2)
    assert automation() == set()
    load(instance, resources)
    assert load(instance, resources, "sales_2013-01-01.csv", checks=False).success  # loaded ...
    cut_short = instance.add_run(dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED))
    plan_raw_checks(instance, cut_short, "sales_2013-01-01.csv")  # ... by a run that ended before checking it
    instance.report_run_failed(cut_short)
    (data_dir / "landing" / "sales_2013-01-02.csv").write_text("")  # quarantined: nothing loaded, nothing to check
    assert not load(instance, resources, "sales_2013-01-02.csv").success

    (request,), _ = recheck_requests(instance)
    assert (request.partition_key, request.run_key) == ("sales_2013-01-01.csv",
                                                        f"recheck sales_2013-01-01.csv after run {cut_short.run_id}")
    defs = dg.Definitions(assets=ASSETS, asset_checks=CHECKS, resources=resources)
    recheck = run_checks_only(defs, instance, request)
    assert recheck.success  # verified now
    assert recheck_requests(instance)[0] == []
    assert automation() == {"cleaned/sales", "features/sales_features"}  # and it flows


def run_downstream(instance, resources) -> dg.ExecuteInProcessResult:
    """The run automation starts: cleaned and features with their checks."""
    downstream = dg.AssetSelection.assets(cleaned_sales, sales_features)
    return dg.materialize([*ASSETS, *CHECKS], selection=downstream | dg.AssetSelection.checks_for_assets(
        cleaned_sales, sales_features), instance=instance, resources=resources)


def cleaned_days(data_dir) -> dict[str, tuple[int, tuple[str, ...]]]:
    """Per day of cleaned.sales: its rows and the files they came from."""
    with lake(data_dir) as conn:
        return {str(day): (rows, tuple(files)) for day, rows, files in conn.execute(
            "SELECT date, count(*), list(DISTINCT _source_file ORDER BY _source_file) FROM cleaned.sales "
            "GROUP BY 1 ORDER BY 1").fetchall()}


def with_negative_sale(text: str) -> str:
    """The same day with store 1's sale made negative: a batch that fails ``sales_not_negative``."""
    header, first, *rest = text.splitlines()
    fields = first.split(",")
    return "\n".join([header, ",".join([*fields[:3], "-5", *fields[4:]]), *rest]) + "\n"


@pytest.mark.parametrize("order", ["good file first", "bad file first"])
def test_in_a_burst_the_verified_batch_flows_and_the_unverified_one_waits_whatever_the_order(
        order, automation, data_dir, instance, resources):
    land(data_dir, days=2)
    assert automation() == set()
    good, bad = data_dir / "landing" / "sales_2013-01-01.csv", data_dir / "landing" / "sales_2013-01-02.csv"
    correct = bad.read_text()
    bad.write_text(with_negative_sale(correct))
    assert load(instance, resources).success
    for path in ([good, bad] if order == "good file first" else [bad, good]):
        assert load(instance, resources, path.name).success == (path is good)

    assert automation() == {"cleaned/sales", "features/sales_features"}  # the good file does not wait for the bad
    assert run_downstream(instance, resources).success
    assert cleaned_days(data_dir) == {"2013-01-01": (1114, ("sales_2013-01-01.csv",))}  # the bad one's rows do
    assert automation() == set()

    bad.write_text(correct)  # corrected under the same name: it is verified and flows too
    assert load(instance, resources, bad.name).success
    assert automation() == {"cleaned/sales", "features/sales_features"}
    assert run_downstream(instance, resources).success
    assert cleaned_days(data_dir) == {"2013-01-01": (1114, ("sales_2013-01-01.csv",)),
                                      "2013-01-02": (1115, ("sales_2013-01-02.csv",))}


def test_what_an_unverified_batch_would_change_waits_for_it(automation, data_dir, instance, resources):
    """A bad correction of a file that flowed keeps that file's rows in cleaned, even when another verified
    file touches the same day (recomputing the day from verified files alone would drop them)."""
    land(data_dir, days=2)
    assert automation() == set()
    landing = data_dir / "landing"
    day1, day2 = (landing / "sales_2013-01-01.csv").read_text(), (landing / "sales_2013-01-02.csv").read_text()
    (landing / "sales_2013-01-02.csv").unlink()
    assert load(instance, resources).success and load(instance, resources, "sales_2013-01-01.csv").success
    assert automation() == {"cleaned/sales", "features/sales_features"}
    assert run_downstream(instance, resources).success
    before = cleaned_days(data_dir)

    (landing / "sales_2013-01-01.csv").write_text(with_negative_sale(day1))  # a correction that fails its checks
    assert not load(instance, resources, "sales_2013-01-01.csv").success
    # a good file with all of day 2 and store 2's day 1: it touches day 1, which the failed correction would change
    header, *rows = day2.splitlines()
    store_2 = next(r for r in day1.splitlines() if r.startswith("2,"))
    (landing / "sales_2013-01-01_2013-01-02.csv").write_text("\n".join([header, store_2, *rows]) + "\n")
    assert load(instance, resources, "sales_2013-01-01_2013-01-02.csv").success
    assert automation() == {"cleaned/sales", "features/sales_features"}
    assert run_downstream(instance, resources).success
    waiting = {"2013-01-01": before["2013-01-01"],  # waits: 1,114 rows, as before
               "2013-01-02": (1115, ("sales_2013-01-01_2013-01-02.csv",))}
    assert cleaned_days(data_dir) == waiting
    rebuilt = dg.materialize([*ASSETS, *CHECKS], selection=dg.AssetSelection.assets(cleaned_sales),
                             run_config={"ops": {"cleaned__sales": {"config": {"full_rebuild": True}}}},
                             instance=instance, resources=resources)
    assert rebuilt.success and cleaned_days(data_dir) == waiting  # a full rebuild keeps the waiting day too

    fixed = day1.replace("\n1,2,2013-01-01,", "\n1,2,2013-01-01,1")  # a new correction, landed last: verified
    assert fixed != day1
    (landing / "sales_2013-01-01.csv").write_text(fixed)
    assert load(instance, resources, "sales_2013-01-01.csv").success
    assert automation() == {"cleaned/sales", "features/sales_features"}
    assert run_downstream(instance, resources).success
    assert cleaned_days(data_dir)["2013-01-01"] == (1114, ("sales_2013-01-01.csv",))  # the correction wins the day
    with lake(data_dir) as conn:
        assert conn.execute("SELECT sales FROM cleaned.sales WHERE store = 1 AND date = '2013-01-01'").fetchall() == [
            (int(next(r for r in fixed.splitlines() if r.startswith("1,")).split(",")[3]),)]
