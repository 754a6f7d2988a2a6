"""Landed datasets are declared in YAML: file-name patterns, and declarations refused at load with file and line."""

import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from platform_assets.datasets import load_datasets
from platform_assets.datasets.patterns import FilePattern, PatternError
from platform_assets.settings import Settings
from platform_assets_tests.conftest import causes

REPO = Path(__file__).resolve().parents[1]
SALES = FilePattern("sales_{first:date}[_{last:date}].csv")


@pytest.mark.parametrize("name, values", [
    ("sales_2015-06-20.csv", {"first": date(2015, 6, 20)}),
    ("sales_2015-06-14_2015-06-20.csv", {"first": date(2015, 6, 14), "last": date(2015, 6, 20)}),
    ("sales_2015-06-20_2015-06-20.csv", {"first": date(2015, 6, 20), "last": date(2015, 6, 20)}),
    ("sales_2015-13-45.csv", None),  # the shape, an impossible date
    ("sales_2015-06-20_2015-06-14.csv", None),  # a range that ends before it starts
    ("sales_２０１５-06-20.csv", None),  # digits, but not ASCII ones
    ("sales_2015-06-20.csv.bak", None),
    ("Sales_2015-06-20.csv", None),
    ("sales_" + "9" * 300 + ".csv", None),
])
def test_a_pattern_matches_strictly_and_totally(name, values):
    assert SALES.values(name) == values
    if values is not None:
        assert SALES.dates(name) == (values["first"], values.get("last", values["first"]))


def test_a_pattern_says_why_a_name_of_its_shape_is_not_valid():
    assert SALES.problem("sales_2015-02-29.csv") == "2015-02-29 in its name is not a calendar date"
    assert SALES.problem("sales_2015-06-20_2015-06-14.csv") == "its first day 2015-06-20 is after its last day 2015-06-14"
    assert SALES.problem("store.csv") is None and not SALES.matches("store.csv")  # another shape: not its business
    assert SALES.shown == "sales_<YYYY-MM-DD>[_<YYYY-MM-DD>].csv"
    assert SALES.examples() == ["sales_2015-07-31.csv", "sales_2015-07-31_2015-07-31.csv"]
    assert FilePattern("weather_{state:word}_{day:date}.csv").values("weather_BY_2015-01-01.csv") == {
        "state": "BY", "day": date(2015, 1, 1)}


@pytest.mark.parametrize("pattern, problem", [
    ("{day:date}", "a pattern is a file name with an extension"),
    ("sales/{day:date}.csv", "a pattern is a file name with an extension"),
    ("sales_{day:dat}.csv", "unknown kind 'dat'"),
    ("sales_{day:date}[_x.csv", "a '[' without its ']'"),
    ("sales_{day:date}_{day:date}.csv", "the part {day} appears twice"),
])
def test_a_pattern_that_cannot_work_is_refused(pattern, problem):
    with pytest.raises(PatternError, match=re.escape(problem)):
        FilePattern(pattern)


@pytest.fixture
def defs_copy(tmp_path) -> Path:
    """A copy of the code location's defs folder to break."""
    copy = tmp_path / "defs"
    shutil.copytree(Settings.from_env().defs_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def refused(defs_dir: Path) -> str:
    """What loading (and building) the datasets of ``defs_dir`` says when it refuses them."""
    with pytest.raises(Exception) as error:
        load_datasets(defs_dir).assets_and_checks()
    return causes(error.value)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_an_unknown_column_type_is_refused_with_file_and_line(defs_copy):
    defs = defs_copy / "sales" / "defs.yaml"
    defs.write_text(defs.read_text().replace("{name: Promo, type: TINYINT,", "{name: Promo, type: TINYINTEGER,"))
    told = refused(defs_copy)
    assert re.search(rf"{re.escape(str(defs))}:\d+", told) and "unknown column type 'TINYINTEGER'" in told


def test_a_pattern_without_a_file_name_is_refused_with_file_and_line(defs_copy):
    defs = defs_copy / "sales" / "defs.yaml"
    defs.write_text(defs.read_text().replace('pattern: "sales_{first:date}[_{last:date}].csv"',
                                             'pattern: "{first:date}"'))
    told = refused(defs_copy)  # Dagster names the line of the mapping the field is in
    assert f"{defs}:{line_of(defs, 'files:')}" in told and "a pattern is a file name with an extension" in told


def test_two_datasets_taking_the_same_name_are_refused_with_both_files_and_lines(defs_copy):
    twin = defs_copy / "daily_sales"
    shutil.copytree(defs_copy / "sales", twin)
    defs = twin / "defs.yaml"
    defs.write_text(defs.read_text().replace("table: raw.sales", "table: raw.daily_sales")
                    .replace('pattern: "sales_{first:date}[_{last:date}].csv"', 'pattern: "sales_{day:date}.csv"'))
    told = refused(defs_copy)
    original = defs_copy / "sales" / "defs.yaml"
    assert f"{defs}:{line_of(defs, 'files:')}" in told and f"{original}:{line_of(original, 'files:')}" in told
    assert "takes sales_2015-07-31.csv" in told and "each file name must belong to one dataset" in told


def test_a_contract_naming_a_column_the_dataset_does_not_have_is_refused_with_file_and_line(defs_copy):
    contract = defs_copy / "sales" / "contract.yml"
    contract.write_text(contract.read_text().replace("- name: Customers", "- name: Visitors"))
    told = refused(defs_copy)
    assert f"{contract}:{line_of(contract, '- name: Visitors')}" in told
    assert "column 'Visitors' is not a column of raw.sales" in told


def test_dg_check_defs_reports_a_broken_declaration(defs_copy):
    """What a person adding a dataset runs: the same refusal, from the command line."""
    defs = defs_copy / "sales" / "defs.yaml"
    defs.write_text(defs.read_text().replace("dates_in: Date", "dates_in: Day"))
    done = subprocess.run([str(REPO / ".venv" / "bin" / "dg"), "check", "defs"], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PLATFORM_DEFS_DIR": str(defs_copy)}, timeout=600)
    assert done.returncode != 0
    assert f"{defs}:{line_of(defs, 'columns:')}: dates_in: Day is not a declared column" in done.stdout + done.stderr


def test_the_scaffolded_dataset_loads_as_it_is(defs_copy):
    done = subprocess.run([str(REPO / ".venv" / "bin" / "dg"), "scaffold", "defs", "platform_assets.datasets.LandedDataset",
                           "probe_feed"], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PLATFORM_DEFS_DIR": str(defs_copy)})
    scaffolded = REPO / "platform_assets" / "defs" / "probe_feed"
    try:
        assert done.returncode == 0, done.stderr
        shutil.copytree(scaffolded, defs_copy / "probe_feed")
    finally:
        shutil.rmtree(scaffolded, ignore_errors=True)
    datasets = load_datasets(defs_copy)
    (probe,) = [d for d in datasets.all if d.table == "raw.probe_feed"]
    assert probe.pattern.dates("probe_feed_2015-07-31.csv") == (date(2015, 7, 31), date(2015, 7, 31))
    _, checks = datasets.assets_and_checks()
    assert {s.key.name for c in checks for s in c.check_specs if s.asset_key == probe.asset_key} == {
        "raw_probe_feed_schema", "day_not_missing", "dates_within_file_name", "probe_feed_file_not_empty",
        "value_not_negative"}
