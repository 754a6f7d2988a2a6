"""The landing zone in buckets (``PLATFORM_LANDING_URL=s3://landing/...``): the landing sensor's guarantees
on a real S3 server (SeaweedFS), with the platform's identity and the upstream's.

The same sensor and loads as on a local folder (``test_sensor.py``), through ``storage.py``:
a file is taken only once whole, odd keys are quarantined with reasons and never overwrite
each other, every landing is archived once, re-landing is honoured, and a failed load is
retried with a back-off and reported when stuck. DuckDB reads the CSV from the bucket.
"""

import hashlib
import re
import socket
import time
from datetime import date

import dagster as dg
import obstore
import pytest

from platform_assets.resources import LandingZone
from platform_assets.sample_data.land import land
from platform_assets.storage import Place
from platform_assets_tests.conftest import landing_sensor
from platform_assets_tests.fixtures.object_store import LANDING_ZONE, seaweedfs
from platform_assets_tests.test_sensor import requested, run_request, tick  # noqa: F401 - tick: the sensor's ticks

ARCHIVED = re.compile(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{12}\.csv")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with seaweedfs(tmp_path_factory.mktemp("object_store"), buckets=LANDING_ZONE) as store:
        yield store


@pytest.fixture
def prefix(request) -> str:
    """Each test's own prefix in the three buckets."""
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60]


@pytest.fixture
def landing(store, prefix, data_dir, monkeypatch) -> LandingZone:
    """The landing zone in the buckets; the process runs with the platform's S3 identity (the lake stays local)."""
    for name, value in store.env("lake-writer").items():
        monkeypatch.setenv(name, value)
    return LandingZone(data_dir=str(data_dir), landing_url=f"s3://landing/{prefix}",
                       archive_url=f"s3://archive/{prefix}", quarantine_url=f"s3://quarantine/{prefix}")


@pytest.fixture
def keys(store, prefix):
    """What a bucket holds under the test's prefix, as keys relative to it."""
    return lambda bucket: [k.removeprefix(f"{prefix}/") for k in store.keys(bucket, prefix=f"{prefix}/")]


@pytest.fixture
def put(store, prefix):
    """Upstream writes an object straight into the landing bucket."""
    return lambda key, data: obstore.put(store.bucket("landing", role="upstream"), f"{prefix}/{key}", data)


@pytest.fixture
def master_loaded(tick, data_dir, landing, instance, resources, keys, store, prefix):
    """The store master landed in the bucket and was loaded, as after the first tick's run."""
    land(data_dir, days=1, first=date(2012, 12, 31), zone=landing)
    obstore.delete(store.bucket("landing"), f"{prefix}/sales_2012-12-31.csv")
    (stores,) = tick().run_requests
    assert run_request(instance, resources, stores).success
    assert keys("landing") == []


def test_files_landed_in_the_bucket_load_from_it_are_archived_in_it_and_leave_landing(
        tick, data_dir, landing, instance, resources, keys, store, prefix, query):
    landed = land(data_dir, days=2, zone=landing)  # store.csv and two days, each one upload
    assert [f.url for f in landed] == [f"s3://landing/{prefix}/{name}" for name in
                                       ("store.csv", "sales_2013-01-01.csv", "sales_2013-01-02.csv")]
    assert not (data_dir / "landing").exists(), "nothing lands on the local disk"
    uploaded = {f.path.name: bytes(obstore.get(store.bucket("landing"), f"{prefix}/{f.path.name}").bytes())
                for f in landed}

    (stores,) = tick().run_requests  # the sales files wait for the store master
    assert run_request(instance, resources, stores).success
    days = tick().run_requests
    assert sorted(r.partition_key for r in days) == ["sales_2013-01-01.csv", "sales_2013-01-02.csv"]
    for day in days:
        assert run_request(instance, resources, day).success

    assert keys("landing") == []  # each file left landing once its rows committed
    archived = keys("archive")
    assert sorted(k.split("/")[0] for k in archived) == sorted(uploaded)  # one copy per landing
    assert all(ARCHIVED.fullmatch(k.split("/")[1]) for k in archived)
    for key in archived:  # the archive holds exactly what upstream put, under its content's hash
        content = bytes(obstore.get(store.bucket("archive"), f"{prefix}/{key}").bytes())
        assert content == uploaded[key.split("/")[0]]
        assert hashlib.sha256(content).hexdigest()[:12] in key
    assert not (data_dir / "archive").exists()
    rows = dict(query("SELECT _source_file, count(*) FROM raw.sales GROUP BY ALL"))
    assert rows == {f.path.name: f.rows for f in landed[1:]}  # read by DuckDB from the bucket, every row once
    assert query("SELECT file_name, status FROM ops.landed_files ORDER BY file_name") == [
        ("sales_2013-01-01.csv", "loaded"), ("sales_2013-01-02.csv", "loaded"), ("store.csv", "loaded")]


def test_an_object_is_taken_only_once_its_upload_is_complete(tick, landing, store, prefix, master_loaded, keys):
    header = b"Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday\n"
    writer = landing.landing.fs.open(f"landing/{prefix}/sales_2013-01-01.csv", "wb", block_size=5 * 2**20)
    writer.write(header + b"1,2,2013-01-01,0,0,0,0,a,1\n" * (6 * 2**20 // 28))
    writer.flush()  # a multipart upload is under way: its first part is on the server
    assert writer.mpu is not None
    assert keys("landing") == []
    assert tick().run_requests == []  # nothing to see yet, nothing quarantined
    assert keys("quarantine") == []
    writer.write(b"2,2,2013-01-01,0,0,0,0,a,1\n")
    writer.close()  # the upload completes: the object appears whole
    assert requested(tick()) == [("sales_2013-01-01.csv", "raw/sales")]


def test_odd_keys_are_quarantined_with_reasons_and_never_overwrite_each_other(tick, put, keys, master_loaded):
    put("notes.txt", b"hello\n")
    put("exports/sales_2013-01-01.csv", b"Store\n")  # a "folder": keys under a shared prefix
    put("sales_2013-13-01.csv", b"Store\n")
    result = tick()
    assert result.run_requests == []
    assert keys("landing") == []
    quarantined = keys("quarantine")
    assert set(quarantined) == {"notes.txt", "notes.txt.reason.txt", "exports/sales_2013-01-01.csv",
                                "exports.reason.txt", "sales_2013-13-01.csv", "sales_2013-13-01.csv.reason.txt"}
    reasons = {o.metadata["file"].value: o.metadata["reason"].value for o in result.asset_events}
    assert "not a file the platform knows" in reasons["notes.txt"]
    assert "a folder (in a bucket: keys under a shared prefix), not a file" in reasons["exports"]
    assert "13" in reasons["sales_2013-13-01.csv"]

    put("notes.txt", b"hello again\n")  # the same name again: quarantined beside the first, not over it
    tick()
    assert {"notes.txt.2", "notes.txt.2.reason.txt"} <= set(keys("quarantine"))


def test_relanding_the_loaded_content_is_dropped_and_a_correction_is_loaded_and_archived_again(
        tick, put, keys, instance, resources, master_loaded, store, prefix, query):
    content = b"Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday\n" \
              b"1,2,2013-01-01,5263,555,1,1,0,1\n2,2,2013-01-01,6064,625,1,1,0,1\n"
    put("sales_2013-01-01.csv", content)
    (first,) = tick().run_requests
    assert run_request(instance, resources, first).success

    put("sales_2013-01-01.csv", content)  # the same bytes again: a duplicate, taken out, not loaded
    assert tick().run_requests == []
    assert keys("landing") == []

    put("sales_2013-01-01.csv", content.replace(b"5263", b"5300"))  # a correction: a new landing
    (second,) = tick().run_requests
    assert second.run_key != first.run_key
    assert run_request(instance, resources, second).success
    assert query("SELECT sum(Sales) FROM raw.sales") == [(5300 + 6064,)]
    copies = [k for k in keys("archive") if k.startswith("sales_2013-01-01.csv/")]
    assert len(copies) == 2  # both versions kept, neither overwritten


def test_a_failed_load_is_retried_with_a_back_off_and_reported_when_stuck(
        tick, put, keys, instance, resources, master_loaded, store, prefix, monkeypatch, capsys, query):
    monkeypatch.setenv("PLATFORM_LANDING_RETRY_SECONDS", "2")
    monkeypatch.setenv("PLATFORM_LANDING_STUCK_SECONDS", "0")
    put("sales_2013-01-01.csv", b"Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday\n"
                                b"1,2,2013-01-01,5263,555,1,1,0,1\n")
    (first,) = tick().run_requests
    with monkeypatch.context() as upstream:  # a worker with the wrong identity: it may not write the archive
        for name, value in store.env("upstream").items():
            upstream.setenv(name, value)
        failed = run_request(instance, resources, first)
    message = failed.failure_data_for_node("raw__sales").error.message
    assert f"nothing was loaded: keeping its copy in s3://archive/{prefix} was refused (Forbidden)" in message
    assert query("SELECT file_name FROM ops.landed_files") == [("store.csv",)]  # nothing committed without its copy
    assert keys("landing") == ["sales_2013-01-01.csv"]
    assert [k for k in keys("archive") if k.startswith("sales")] == []

    capsys.readouterr()
    stuck = tick()
    assert stuck.run_requests == []  # back-off first
    log = capsys.readouterr().err
    assert "ended FAILURE; trying again after a 2s back-off (attempt 2)" in log
    assert "STUCK: sales_2013-01-01.csv has waited in landing/" in log
    assert [o.metadata["landing_outcome"].value for o in stuck.asset_events] == ["stuck in landing"]

    deadline = time.monotonic() + 30
    while not (retry := tick().run_requests) and time.monotonic() < deadline:
        time.sleep(0.2)
    (retry,) = retry
    assert retry.run_key != first.run_key and retry.tags == first.tags  # the same landing, its next attempt
    assert run_request(instance, resources, retry).success  # with the platform's identity
    assert keys("landing") == []
    assert query("SELECT count(*) FROM raw.sales") == [(1,)]


def test_a_local_folder_quarantined_into_a_bucket_carries_no_file_its_links_point_to(
        tmp_path, data_dir, store, prefix, keys, instance, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("the host's secret\n")
    folder = data_dir / "landing" / "drop"
    folder.mkdir(parents=True)
    (folder / "sales_2013-01-01.csv").write_text("Store\n")
    (folder / "innocent.csv").symlink_to(secret)
    for name, value in store.env("lake-writer").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PLATFORM_LANDING_QUIET_SECONDS", "0")
    zone = LandingZone(data_dir=str(data_dir), quarantine_url=f"s3://quarantine/{prefix}")  # landing stays local
    result = landing_sensor(dg.build_sensor_context(instance=instance, resources={"landing": zone}))
    assert "a folder, not a file" in result.asset_events[0].metadata["reason"].value
    assert not folder.exists() and secret.exists()
    assert sorted(keys("quarantine")) == ["drop.reason.txt", "drop/innocent.csv", "drop/sales_2013-01-01.csv"]
    note = bytes(obstore.get(store.bucket("quarantine"), f"{prefix}/drop/innocent.csv").bytes()).decode()
    assert note == f"(link to {secret})\n"  # what it was, not what it reaches


def test_a_landing_bucket_that_does_not_answer_skips_the_tick_and_keeps_the_cursor(instance, landing, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    context = dg.build_sensor_context(instance=instance, cursor='{"landings": 7}', resources={"landing": landing})
    result = landing_sensor(context)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith(f"cannot list the landing zone {landing.landing_url} (")
    assert result.skip_message.endswith("trying again next tick")
    assert context.cursor == '{"landings": 7}'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_names_with_pattern_characters_are_taken_as_names_never_as_patterns(tick, put, keys, master_loaded, store,
                                                                           prefix):
    waiting = b"Store,DayOfWeek,Date,Sales,Customers,Open,Promo,StateHoliday,SchoolHoliday\n1,2,2013-01-01,1,1,1,0,0,1\n"
    put("sales_2013-01-01.csv", waiting)
    put("*", b"star\n")  # as a pattern it would match (and move, and delete) everything in landing
    put("rep[1].csv", b"x\n")
    put("*/part-0.csv", b"y\n")  # a "folder" named *
    result = tick()
    assert [r.partition_key for r in result.run_requests] == ["sales_2013-01-01.csv"]
    assert keys("landing") == ["sales_2013-01-01.csv"]  # the file waiting for its load is untouched
    star, rep = (f"{stem}~{hashlib.sha256(name.encode()).hexdigest()[:12]}" for stem, name in
                 (("_", "*"), ("rep_1_.csv", "rep[1].csv")))  # unsafe names get a readable stem and a hash
    assert set(keys("quarantine")) == {star, f"{star}.reason.txt", f"{star}.2/part-0.csv", f"{star}.2.reason.txt",
                                       rep, f"{rep}.reason.txt"}  # each entry by itself, nothing else
    assert bytes(obstore.get(store.bucket("quarantine"), f"{prefix}/{star}").bytes()) == b"star\n"


def test_a_key_that_would_climb_out_of_a_local_folder_is_refused(tmp_path, landing):
    """AWS S3 takes ``a/../../x`` as a key (SeaweedFS and obstore refuse it); copied into a local quarantine it
    would be a path out of it. A local place refuses such a key instead of writing it."""
    quarantine = Place(str(tmp_path / "quarantine"))
    for key in ("evil/../../../escaped.txt", "..", "a//b", "./a"):
        with pytest.raises(ValueError, match="is not a plain name inside"):
            quarantine.write_whole(key, b"outside\n")
    assert list(tmp_path.rglob("*escaped*")) == []


def test_a_version_that_landed_while_the_old_one_was_looked_at_is_not_removed(landing, put, keys):
    put("sales_2013-01-01.csv", b"old\n")
    seen = landing.landed("sales_2013-01-01.csv")
    put("sales_2013-01-01.csv", b"the correction\n")
    assert not landing.landing.remove_if_unchanged(seen)
    assert keys("landing") == ["sales_2013-01-01.csv"]
    assert landing.landing.remove_if_unchanged(landing.landed("sales_2013-01-01.csv"))
    assert keys("landing") == []


@pytest.mark.parametrize("role, told", [("admin", "there is no bucket 'no-such-bucket'"),
                                         ("lake-writer", "PermissionError: Access Denied")])
def test_a_landing_bucket_that_does_not_exist_is_said_so_not_taken_for_an_empty_one(
        instance, data_dir, store, monkeypatch, role, told):
    for name, value in store.env(role).items():
        monkeypatch.setenv(name, value)
    zone = LandingZone(data_dir=str(data_dir), landing_url="s3://no-such-bucket")
    result = landing_sensor(dg.build_sensor_context(instance=instance, resources={"landing": zone}))
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("cannot list the landing zone s3://no-such-bucket (") and told in \
        result.skip_message
