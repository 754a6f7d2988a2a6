"""Raw layer: landed files load exactly, idempotently, all-or-nothing; bad files are quarantined."""

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from platform_assets.sample_data.land import land

SALES_HEADER = "Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) - 1


def materialization(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.get_asset_materialization_events()
    return event.materialization.metadata


def warehouse_fingerprint(query) -> str:
    """A digest of everything in raw.* and the ledger, to prove a bad batch changed nothing."""
    parts = []
    for table in ("raw.stores", "raw.sales", "ops.landed_files"):
        parts.append(repr(query(f"SELECT * FROM {table} ORDER BY ALL")))
    return hashlib.sha256("".join(parts).encode()).hexdigest()


@pytest.fixture
def loaded(data_dir, load):
    """Store master and three daily sales files, loaded."""
    land(data_dir, days=3)
    landing = data_dir / "landing"
    expected = {p.name: data_lines(p) for p in landing.iterdir()}
    assert load().success
    for name in sorted(expected):
        if name.startswith("sales_"):
            assert load(name).success
    return expected


def test_loads_match_the_files_and_are_archived(loaded, data_dir, query):
    assert query("SELECT count(*) FROM raw.stores") == [(loaded["store.csv"],)]
    per_file = dict(query("SELECT _source_file, count(*) FROM raw.sales GROUP BY 1"))
    assert per_file == {name: rows for name, rows in loaded.items() if name.startswith("sales_")}
    assert sorted(p.name for p in (data_dir / "archive").iterdir()) == sorted(loaded)
    assert list((data_dir / "landing").iterdir()) == []
    ledger = query("SELECT file_name, kind, status, rows, size_bytes FROM ops.landed_files ORDER BY 1")
    assert [(n, k, s, r) for n, k, s, r, _ in ledger] == [
        (name, "stores" if name == "store.csv" else "sales", "loaded", rows) for name, rows in sorted(loaded.items())
    ]
    # each landed version is kept as archive/<name>/<landed at>-<sha256 prefix>.csv
    for name, *_, size in ledger:
        (copy,) = (data_dir / "archive" / name).iterdir()
        assert copy.stat().st_size == size and copy.name.endswith(f"-{sha256(copy)[:12]}.csv")


def test_columns_have_the_declared_types_not_guessed_ones(loaded, query):
    types = dict(query("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'sales'"))
    assert types == {
        "Store": "INTEGER", "DayOfWeek": "TINYINT", "Date": "DATE", "Sales": "INTEGER", "Customers": "INTEGER",
        "Open": "TINYINT", "Promo": "TINYINT", "StateHoliday": "VARCHAR", "SchoolHoliday": "TINYINT",
        "_source_file": "VARCHAR", "_loaded_at": "TIMESTAMP WITH TIME ZONE",
    }
    # 2013 files carry the quoted "0" quirk; the CSV reader reads it as the plain value 0
    assert query("SELECT DISTINCT StateHoliday FROM raw.sales WHERE Date = '2013-01-02'") == [("0",)]
    assert query("SELECT count(*) FROM raw.stores WHERE CompetitionDistance IS NULL") == [(3,)]


def test_rematerializing_a_partition_replaces_its_rows(loaded, load, query):
    before = query("SELECT count(*), sum(Sales) FROM raw.sales")
    result = load("sales_2013-01-02.csv")  # the file is now read back from archive/
    assert result.success
    assert query("SELECT count(*), sum(Sales) FROM raw.sales") == before
    assert materialization(result)["dagster/row_count"].value == loaded["sales_2013-01-02.csv"]
    assert load().success
    assert query("SELECT count(*) FROM raw.stores") == [(1115,)]


def test_a_changed_file_under_the_same_name_replaces_the_old_rows(loaded, data_dir, load, query):
    changed = data_dir / "landing" / "sales_2013-01-02.csv"
    changed.write_text(f"{SALES_HEADER}\n1,3,2013-01-02,100,10,1,0,0,1\n2,3,2013-01-02,200,20,1,0,0,1\n")
    assert load("sales_2013-01-02.csv").success
    assert query("SELECT Store, Sales FROM raw.sales WHERE _source_file = 'sales_2013-01-02.csv' ORDER BY 1") == [
        (1, 100), (2, 200)]
    assert query("SELECT count(*) FROM raw.sales") == [(loaded["sales_2013-01-01.csv"] + 2 + loaded["sales_2013-01-03.csv"],)]


def test_materialization_metadata_describes_the_table(loaded, load):
    metadata = materialization(load("sales_2013-01-03.csv"))
    assert metadata["dagster/row_count"].value == 1115
    assert metadata["dagster/table_name"].value == "raw.sales"
    schema = metadata["dagster/column_schema"].schema
    assert [c.name for c in schema.columns] == SALES_HEADER.split(",") + ["_source_file", "_loaded_at"]
    assert all(c.description for c in schema.columns)
    assert metadata["table_row_count"].value == sum(v for k, v in loaded.items() if k.startswith("sales_"))
    assert metadata["source_file"].value == "sales_2013-01-03.csv"


GOOD_ROW = "1,3,2013-01-09,5000,500,1,0,0,0"
BAD_FILES = {
    "missing_column": (f"{SALES_HEADER.rsplit(',', 1)[0]}\n1,3,2013-01-09,5000,500,1,0,0\n",
                       "missing columns: SchoolHoliday"),
    "unexpected_column": (f"{SALES_HEADER},Extra\n{GOOD_ROW},9\n", "unexpected columns: 'Extra'"),
    "wrong_column_count": (f"{SALES_HEADER}\n{GOOD_ROW}\n{GOOD_ROW}\n1,3,2013-01-09,5000\n",
                           "Line: 4 | Original Line: 1,3,2013-01-09,5000 | Expected Number of Columns: 9 Found: 4"),
    "unparsable_number": (f"{SALES_HEADER}\n{GOOD_ROW}\n2,3,2013-01-09,lots,500,1,0,0,0\n",
                          'Line: 3 | Original Line: 2,3,2013-01-09,lots,500,1,0,0,0 | Error when converting column "Sales"'),
    "unparsable_date": (f"{SALES_HEADER}\n{GOOD_ROW}\n2,3,09.01.2013,5000,500,1,0,0,0\n",
                        'Line: 3 | Original Line: 2,3,09.01.2013,5000,500,1,0,0,0 | Error when converting column "Date"'),
    "empty_file": ("", "file is empty"),
    "not_utf8": (f"{SALES_HEADER}\n{GOOD_ROW}\n2,3,2013-01-09,5000,500,1,0,\xe9,0\n".encode("latin-1"),
                 "Line: 3 | Original Line:"),
}


@pytest.mark.parametrize("defect", BAD_FILES)
def test_bad_files_are_quarantined_with_a_reason_and_change_nothing(defect, loaded, data_dir, load, query):
    content, expected_reason = BAD_FILES[defect]
    name = "sales_2013-01-09.csv"
    bad = data_dir / "landing" / name
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = warehouse_fingerprint(query)

    result = load(name)

    assert not result.success
    failure = result.failure_data_for_node("raw__sales").error
    assert "was quarantined, nothing was loaded" in failure.message and expected_reason in failure.message
    assert not bad.exists()
    assert (data_dir / "quarantine" / name).read_bytes() == (content if isinstance(content, bytes) else content.encode())
    reason = (data_dir / "quarantine" / f"{name}.reason.txt").read_text()
    assert expected_reason in reason and name in reason
    if defect == "not_utf8":
        assert "not utf-8 encoded" in reason
    # the warehouse holds exactly what it held, plus the ledger's note of the rejection
    assert query("SELECT status, reason FROM ops.landed_files WHERE file_name = ?", [name]) == [
        ("quarantined", reason.strip())]
    query_without_it = lambda sql, p=None: [r for r in query(sql, p) if name not in r]  # noqa: E731
    assert warehouse_fingerprint(query_without_it) == before


def test_a_quarantined_partition_says_so_when_rematerialized(loaded, data_dir, load):
    (data_dir / "landing" / "sales_2013-01-09.csv").write_text("")
    assert not load("sales_2013-01-09.csv").success
    again = load("sales_2013-01-09.csv")
    assert not again.success
    assert "was quarantined: sales_2013-01-09.csv: file is empty" in again.failure_data_for_node("raw__sales").error.message


def test_unusual_but_unambiguous_files_load(loaded, data_dir, load, query):
    """BOM, CRLF line endings and shuffled column order are read as what they mean."""
    columns = SALES_HEADER.split(",")
    shuffled = list(reversed(columns))
    row = dict(zip(columns, GOOD_ROW.split(",")))
    text = ",".join(shuffled) + "\r\n" + ",".join(row[c] for c in shuffled) + "\r\n"
    (data_dir / "landing" / "sales_2013-01-09.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load("sales_2013-01-09.csv").success
    assert query("SELECT Store, DayOfWeek, Date::VARCHAR, Sales, Customers, Open, Promo, StateHoliday, SchoolHoliday "
                 "FROM raw.sales WHERE _source_file = 'sales_2013-01-09.csv'") == [
        (1, 3, "2013-01-09", 5000, 500, 1, 0, "0", 0)]


def test_the_whole_history_loads_in_one_partition(full_history, tmp_path, instance):
    import shutil

    from platform_assets_tests.conftest import raw_sales, raw_stores, sales_files
    from platform_assets.resources import LandingZone, Warehouse

    data_dir = tmp_path / "copy"
    shutil.copytree(full_history, data_dir)
    resources = {"landing": LandingZone(data_dir=str(data_dir)),
                 "warehouse": Warehouse.embedded(data_dir)}
    name = "sales_2013-01-01_2015-07-31.csv"
    instance.add_dynamic_partitions(sales_files.name, [name])
    assert dg.materialize([raw_stores], resources=resources, instance=instance).success
    result = dg.materialize([raw_sales], partition_key=name, resources=resources, instance=instance)
    assert materialization(result)["dagster/row_count"].value == 1_017_209
