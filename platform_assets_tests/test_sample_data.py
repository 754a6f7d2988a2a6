"""The generator reproduces the Rossmann files' schema, quirks and exact counts, deterministically."""

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from platform_assets.datasets import load_datasets
from platform_assets.sample_data import rossmann
from platform_assets.sample_data.land import land

SALES_HEADER = "Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday"
STORES_HEADER = (
    "Store,StoreType,Assortment,CompetitionDistance,CompetitionOpenSinceMonth,"
    "CompetitionOpenSinceYear,Promo2,Promo2SinceWeek,Promo2SinceYear,PromoInterval"
)

DECLARED = {d.name: d for d in load_datasets().all}


@pytest.fixture(scope="module")
def db(full_history: Path):
    """The landed files read by DuckDB's own CSV sniffer: independent of our loader."""
    conn = duckdb.connect()
    landing = full_history / "landing"
    conn.execute(f"CREATE TABLE sales AS SELECT * FROM read_csv('{landing}/sales_*.csv', all_varchar = true, quote = '\"')")
    conn.execute(f"CREATE TABLE stores AS SELECT * FROM read_csv('{landing}/store.csv', all_varchar = true)")
    yield conn
    conn.close()


def one(db, sql):
    return db.execute(sql).fetchone()[0]


def test_full_history_has_the_real_row_counts(full_history, db):
    assert sorted(p.name for p in (full_history / "landing").iterdir()) == [
        "sales_2013-01-01_2015-07-31.csv",
        "store.csv",
    ]
    assert one(db, "SELECT count(*) FROM sales") == 1_017_209
    assert one(db, "SELECT count(DISTINCT Store) FROM sales") == 1115
    assert one(db, "SELECT count(DISTINCT Date) FROM sales") == 942
    assert db.execute("SELECT min(Date::DATE), max(Date::DATE) FROM sales").fetchone() == (
        date(2013, 1, 1),
        date(2015, 7, 31),
    )
    assert one(db, "SELECT count(*) FROM (SELECT Store, Date FROM sales GROUP BY ALL HAVING count(*) > 1)") == 0


def test_180_stores_have_no_rows_in_the_second_half_of_2014(db):
    per_store = db.execute(
        """SELECT Store, count(*) FILTER (WHERE Date::DATE BETWEEN '2014-07-01' AND '2014-12-31') AS in_gap,
                  count(*) AS total
           FROM sales GROUP BY Store"""
    ).fetchall()
    gap_stores = [s for s, in_gap, _ in per_store if in_gap == 0]
    assert len(gap_stores) == 180
    assert {total for s, _, total in per_store if s in gap_stores} == {942 - 184}
    # and exactly one other store misses exactly one day
    short = [(s, total) for s, in_gap, total in per_store if in_gap and total != 942]
    assert short == [(short[0][0], 941)]


def test_sales_quirks_and_value_rules(full_history, db):
    raw = (full_history / "landing" / "sales_2013-01-01_2015-07-31.csv").read_text()
    assert raw.startswith(SALES_HEADER + "\n")
    # the number 0 and the string "0" both appear as StateHoliday, parsed to the same value
    assert re.search(r',"0",[01]\n', raw) and re.search(r",0,[01]\n", raw)
    assert {r[0] for r in db.execute("SELECT DISTINCT StateHoliday FROM sales").fetchall()} == {"0", "a", "b", "c"}
    assert one(db, "SELECT count(*) FROM sales WHERE DayOfWeek::INT != isodow(Date::DATE)") == 0
    assert one(db, "SELECT count(*) FROM sales WHERE Open = '0' AND (Sales != '0' OR Customers != '0')") == 0
    for column in ("Open", "Promo", "SchoolHoliday"):
        assert {r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM sales").fetchall()} == {"0", "1"}
    assert one(db, "SELECT min(Sales::INT) FROM sales") == 0
    # most stores close on Sundays, almost all are open Monday to Saturday
    sunday_open = one(db, "SELECT avg(Open::INT) FROM sales WHERE DayOfWeek = '7'")
    weekday_open = one(db, "SELECT avg(Open::INT) FROM sales WHERE DayOfWeek != '7'")
    assert sunday_open < 0.05 and weekday_open > 0.9


def test_sales_carry_a_plausible_signal(db):
    def mean_sales(where):
        return one(db, f"SELECT avg(Sales::INT) FROM sales WHERE Open = '1' AND {where}")

    assert mean_sales("Promo = '1'") > 1.15 * mean_sales("Promo = '0' AND DayOfWeek::INT <= 5")
    assert mean_sales("DayOfWeek = '1'") > mean_sales("DayOfWeek = '6'")  # weekly seasonality
    assert mean_sales("month(Date::DATE) = 12") > 1.15 * mean_sales("month(Date::DATE) = 2")  # yearly
    by_type = dict(db.execute(
        "SELECT StoreType, avg(Sales::INT) FROM sales JOIN stores USING (Store) WHERE Open = '1' GROUP BY 1"
    ).fetchall())
    assert by_type["b"] > max(by_type["a"], by_type["c"], by_type["d"])
    correlation = one(db, "SELECT corr(Sales::INT, Customers::INT) FROM sales WHERE Open = '1'")
    assert correlation > 0.8


def test_store_master_quirks(full_history, db):
    assert (full_history / "landing" / "store.csv").read_text().startswith(STORES_HEADER + "\n")
    assert one(db, "SELECT count(*) FROM stores") == 1115
    assert one(db, "SELECT count(DISTINCT Store) FROM stores") == 1115
    assert {r[0] for r in db.execute("SELECT DISTINCT StoreType FROM stores").fetchall()} == set("abcd")
    assert {r[0] for r in db.execute("SELECT DISTINCT Assortment FROM stores").fetchall()} == set("abc")
    assert one(db, "SELECT count(*) FROM stores WHERE CompetitionDistance IS NULL") == 3
    assert one(db, "SELECT count(*) FROM stores WHERE Promo2 = '0' AND "
                   "(Promo2SinceWeek IS NOT NULL OR Promo2SinceYear IS NOT NULL OR PromoInterval IS NOT NULL)") == 0
    assert one(db, "SELECT count(*) FROM stores WHERE Promo2 = '1' AND PromoInterval IS NULL") == 0
    assert {r[0] for r in db.execute("SELECT DISTINCT PromoInterval FROM stores WHERE Promo2 = '1'").fetchall()} == {
        "Jan,Apr,Jul,Oct", "Feb,May,Aug,Nov", "Mar,Jun,Sept,Dec"}
    assert one(db, "SELECT count(*) FROM stores WHERE CompetitionOpenSinceYear IS NULL") > 100


def test_same_seed_gives_byte_identical_files(tmp_path):
    first = land(tmp_path / "one", batch="weekly", days=14)
    second = land(tmp_path / "two", batch="weekly", days=14)
    other_seed = land(tmp_path / "three", batch="weekly", days=14, seed=7)
    assert [f.path.name for f in first] == [f.path.name for f in second]
    for a, b, c in zip(first, second, other_seed):
        assert a.path.read_bytes() == b.path.read_bytes()
        assert a.path.read_bytes() != c.path.read_bytes()


def test_daily_weekly_and_whole_files_hold_the_same_rows(tmp_path):
    def rows(folder: Path) -> list:
        with duckdb.connect() as conn:
            return conn.execute(
                f"SELECT * FROM read_csv('{folder}/landing/sales_*.csv', all_varchar = true) ORDER BY Date, Store"
            ).fetchall()

    land(tmp_path / "daily", batch="daily", first=date(2014, 6, 28), days=10)
    land(tmp_path / "weekly", batch="weekly", first=date(2014, 6, 28), days=10)
    land(tmp_path / "all", batch="all", first=date(2014, 6, 28), days=10)
    assert len(list((tmp_path / "daily" / "landing").glob("sales_*.csv"))) == 10
    assert len(list((tmp_path / "weekly" / "landing").glob("sales_*.csv"))) == 2
    assert rows(tmp_path / "daily") == rows(tmp_path / "weekly") == rows(tmp_path / "all")
    assert len(rows(tmp_path / "all")) == 1115 * 3 + (1115 - 180) * 7  # the 2014 gap starts on July 1st


def test_land_continues_after_the_last_landed_day_and_lands_stores_once(tmp_path):
    data_dir = tmp_path / "data"
    names = [f.path.name for f in land(data_dir, days=2)]
    assert names == ["store.csv", "sales_2013-01-01.csv", "sales_2013-01-02.csv"]
    # a loaded file sits in archive/ and still counts as landed
    (data_dir / "archive").mkdir()
    (data_dir / "landing" / "sales_2013-01-02.csv").rename(data_dir / "archive" / "sales_2013-01-02.csv")
    assert [f.path.name for f in land(data_dir, batch="weekly")] == ["sales_2013-01-03_2013-01-09.csv"]
    assert [f.path.name for f in land(data_dir, stores=True, days=1)] == ["store.csv", "sales_2013-01-10.csv"]
    assert land(data_dir, batch="all", if_empty=True) == []
    assert not [p for p in (data_dir / "landing").iterdir() if p.name.startswith(".")]


def test_land_goes_past_the_real_history(tmp_path):
    landed = land(tmp_path / "data", first=date(2015, 7, 31), days=2)
    assert [f.path.name for f in landed][1:] == ["sales_2015-07-31.csv", "sales_2015-08-01.csv"]
    assert [f.rows for f in landed][1:] == [1115, 1115]


def test_cli_lands_files_and_rejects_nonsense(tmp_path):
    cli = [sys.executable, "-m", "platform_assets.cli", "land", "--data-dir", str(tmp_path / "data")]
    done = subprocess.run([*cli, "--days", "3"], capture_output=True, text=True, check=True)
    assert "landed sales_2013-01-03.csv: 1,115 rows" in done.stdout
    refused = subprocess.run([*cli, "--batch", "all", "--from", "2016-01-01"], capture_output=True, text=True)
    assert refused.returncode == 2 and "say how many --days" in refused.stderr
    refused = subprocess.run([*cli, "--days", "0"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--days must be at least 1" in refused.stderr


def test_cli_never_crashes_on_names_it_finds_in_landing_or_archive(tmp_path):
    """Impossible dates, reversed ranges, bytes that are not UTF-8: ignored when finding the next day."""
    data_dir = tmp_path / "data"
    land(data_dir, days=1)
    for folder in ("landing", "archive"):
        (data_dir / folder).mkdir(exist_ok=True)
        for name in ("sales_2015-13-45.csv", "sales_2015-06-30_2015-06-01.csv", os.fsdecode(b"sales_\xff.csv")):
            (data_dir / folder / name).write_text("x")
    cli = [sys.executable, "-m", "platform_assets.cli", "land", "--data-dir", str(data_dir)]
    done = subprocess.run(cli, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "landed sales_2013-01-02.csv" in done.stdout


@pytest.mark.parametrize("name, dates", [
    ("sales_2015-06-20.csv", (date(2015, 6, 20), date(2015, 6, 20))),
    ("sales_2015-06-14_2015-06-20.csv", (date(2015, 6, 14), date(2015, 6, 20))),
    ("sales_2015-13-45.csv", None),
    ("sales_2015-02-29.csv", None),
    ("sales_2015-06-20_2015-06-14.csv", None),
    ("sales_2015-06-20.csv.bak", None),
    ("sales_" + "9" * 300 + ".csv", None),
])
def test_sales_file_names_are_checked_strictly_and_totally(name, dates):
    pattern = DECLARED["sales"].pattern  # as defs/sales/defs.yaml declares it
    assert pattern.dates(name) == dates
    assert (pattern.matches(name) and pattern.problem(name) is None) == (dates is not None)


def test_the_generator_writes_what_the_datasets_declare():
    """The generated files have the declared columns and names (the platform reads them by their declarations)."""
    assert rossmann.SALES_COLUMNS == [c.name for c in DECLARED["sales"].columns]
    assert rossmann.STORE_COLUMNS == [c.name for c in DECLARED["stores"].columns]
    assert DECLARED["stores"].pattern.matches(rossmann.STORES_FILE)
    assert DECLARED["sales"].pattern.dates(rossmann.sales_file_name(date(2015, 1, 1), date(2015, 1, 7))) == (
        date(2015, 1, 1), date(2015, 1, 7))
