"""The landing sensor turns new files into partitions and runs, once per content."""

import dagster as dg

from platform_assets.assets.raw import sales_files
from platform_assets.automation.landing_sensor import landing_sensor
from platform_assets.sample_data.land import land


def tick(instance, landing, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"landing": landing})
    return landing_sensor(context)


def test_new_files_become_partitions_and_runs_once(instance, landing, data_dir):
    land(data_dir, days=2)
    (data_dir / "landing" / ".sales_2013-01-03.csv.tmp").write_text("still being written")
    first = tick(instance, landing)
    assert sorted((r.partition_key or "", tuple(k.to_user_string() for k in r.asset_selection)) for r in first.run_requests) == [
        ("", ("raw/stores",)),
        ("sales_2013-01-01.csv", ("raw/sales",)),
        ("sales_2013-01-02.csv", ("raw/sales",)),
    ]
    (request,) = first.dynamic_partitions_requests
    assert request.partitions_def_name == sales_files.name
    assert sorted(request.partition_keys) == ["sales_2013-01-01.csv", "sales_2013-01-02.csv"]

    assert tick(instance, landing, first.cursor).run_requests == []

    (data_dir / "landing" / "store.csv").write_text((data_dir / "landing" / "store.csv").read_text() + "\n")
    changed = tick(instance, landing, first.cursor)
    assert [tuple(k.to_user_string() for k in r.asset_selection) for r in changed.run_requests] == [("raw/stores",)]
    assert changed.dynamic_partitions_requests == []
