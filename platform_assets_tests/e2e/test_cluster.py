"""The cluster profile's execution: every step of every run on Celery workers on other hosts.

Real processes and real network: two worker hosts (network namespaces with their own addresses
and hostnames) run `celery -A platform_assets.execution worker`; Debian's Redis, the broker,
listens with a password on the control host's address on their network; `dagster dev` (webserver
and daemon) runs on the control host with PLATFORM_CELERY_BROKER set. The hosts share the file
system here (the landing folder, the embedded lake, Dagster's SQLite storage); what crosses the
network is the work.
"""

import subprocess
import time
from collections import Counter
from contextlib import contextmanager
from datetime import date

import pytest

from platform_assets.sample_data.land import land
from platform_assets.settings import CELERY_BROKER_ENV, CELERY_REDELIVER_ENV
from platform_assets_tests.e2e.dagster_server import BIN, dagster_dev
from platform_assets_tests.fixtures.cluster import start_workers
from platform_assets_tests.fixtures.hosts import network, redis

pytestmark = pytest.mark.e2e

WORKERS = ("worker-1", "worker-2")


def step_hosts(server, run_id: str) -> dict[str, str]:
    """Each step of a run and the Celery worker (``name@host``) that executed it, from the run's events."""
    data = server.graphql(
        """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
             __typename ... on EngineEvent { stepKey message metadataEntries { label ... on TextMetadataEntry { text } } }
           } } } }""", {"runId": run_id})
    found = {}
    for event in data["logsForRun"]["events"]:
        if event["__typename"] == "EngineEvent" and "in celery worker" in (event["message"] or ""):
            worker = next(m["text"] for m in event["metadataEntries"] if m["label"] == "Celery worker")
            found[event["stepKey"]] = worker
    return found


@contextmanager
def cluster(tmp_path, process_per_step: bool = False, **env):
    """Redis on the control host's address, `dagster dev` sending steps to it, and the worker hosts."""
    with network() as net, redis([net.gateway], tmp_path / "redis") as broker:
        with dagster_dev(tmp_path / "control", env={CELERY_BROKER_ENV: broker, **env}) as server:
            yield server, start_workers(net, WORKERS, server.env, tmp_path, process_per_step=process_per_step)


def test_every_step_runs_on_a_worker_host(tmp_path):
    with cluster(tmp_path) as (server, _):
        subprocess.run([str(BIN / "platform-assets"), "land", "--data-dir", str(server.data_dir),
                        "--batch", "daily", "--days", "2"], check=True, capture_output=True)

        def downstream_done():
            return server.latest_materialization("features", "sales_features") and server.idle()
        server.wait_until(downstream_done, 420, "the loads and the downstream layers")

        runs = server.runs()
        assert runs and all(r["status"] == "SUCCESS" for r in runs), [(r["runId"][:8], r["status"]) for r in runs]
        executed = {run["runId"]: step_hosts(server, run["runId"]) for run in runs}
        steps = [(step, worker) for found in executed.values() for step, worker in found.items()]
        assert all(found for found in executed.values()), executed  # no run kept a step on the control host
        hosts_used = Counter(worker.split("@")[1] for _, worker in steps)
        assert set(hosts_used) <= set(WORKERS), hosts_used
        assert any(step.startswith("raw__sales") for step, _ in steps) and any(
            step.startswith("features__sales_features") for step, _ in steps), steps
        assert server.query("SELECT count(DISTINCT \"Date\") FROM cleaned.sales") == [(2,)]


def step_events(server, run_id: str, step: str) -> list[str]:
    """The event types of one step of a run, in order."""
    data = server.graphql(
        """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
             __typename ... on MessageEvent { stepKey } } } } }""", {"runId": run_id})
    return [e["__typename"] for e in data["logsForRun"]["events"] if e.get("stepKey") == step]


def load_big_file(server):
    """A first small load, then a big file (780,000 rows); returns the landed big file, its run and its worker."""
    first = land(server.data_dir, days=1)
    server.wait_until(lambda: server.latest_materialization("raw", "sales") and server.idle(), 300, "a first load")
    (big,) = land(server.data_dir, batch="all", first=date(2013, 1, 2), days=700)
    run = server.wait_until(lambda: next(iter(server.runs_for_partition(big.path.name)), None), 120,
                            "the big file's run")
    worker = server.wait_until(lambda: step_hosts(server, run["runId"]).get("raw__sales"), 120,
                               "a worker host taking the big file's load", every=0.2)
    return first, big, run, worker.split("@")[1]


def told(server, runs) -> str:
    """Each run's status and story: what a failed assertion on them prints."""
    return "\n".join(line for r in runs
                     for line in [f"run {r['runId'][:8]} {r['status']}", *server.run_story(r["runId"])])


def assert_loaded_once(server, first, big) -> None:
    """Every file's rows in raw once, no key twice, one ledger row, one archived copy, landing empty."""
    rows = dict(server.query("SELECT _source_file, count(*) FROM raw.sales GROUP BY 1"))
    assert rows == {f.path.name: f.rows for f in [*first, big] if f.path.name.startswith("sales_")}
    assert server.query("SELECT count(*) FROM (SELECT \"Store\", \"Date\" FROM raw.sales GROUP BY ALL "
                        "HAVING count(*) > 1)") == [(0,)]
    ledger = server.query(f"SELECT status, rows FROM ops.landed_files WHERE file_name = '{big.path.name}'")
    assert ledger == [("loaded", big.rows)]
    assert len(list((server.data_dir / "archive" / big.path.name).iterdir())) == 1
    assert not (server.data_dir / "landing" / big.path.name).exists()


def test_a_worker_host_killed_mid_load_the_other_host_finishes_it_and_the_file_is_loaded_once(tmp_path):
    with cluster(tmp_path, **{CELERY_REDELIVER_ENV: "20"}) as (server, hosts):
        first, big, run, victim = load_big_file(server)
        hosts[victim].kill_all()  # every process of that host, at once
        killed_at = time.time()
        if "ExecutionStepSuccessEvent" in step_events(server, run["runId"], "raw__sales"):
            pytest.fail("the load finished before its host was killed: land a bigger file")

        survivor = next(name for name in WORKERS if name != victim)
        server.wait_until(lambda: server.runs_for_partition(big.path.name)[-1]["status"] in ("SUCCESS", "FAILURE"),
                          600, "the big file's run to end")
        runs = server.runs_for_partition(big.path.name)
        print(f"\nkilled {victim}; runs of the file: {[(r['runId'][:8], r['status']) for r in runs]}; "
              f"{time.time() - killed_at:.0f}s from the kill to the end")
        assert runs[-1]["status"] == "SUCCESS", told(server, runs)
        assert step_hosts(server, runs[-1]["runId"])["raw__sales"].endswith(f"@{survivor}")
        server.wait_until(server.idle, 300, "the downstream layers")
    assert_loaded_once(server, first, big)


def test_a_worker_hosts_link_cut_for_30s_mid_load_the_run_finishes_once_it_is_back(tmp_path):
    # redelivery later than the cut: a network blip must not hand the step out a second time.
    # A process per step: the load's process has no connection to Redis yet when it ends, so it
    # must open one while the link is down (CI caught that case failing the run with "No route to host")
    with cluster(tmp_path, process_per_step=True, **{CELERY_REDELIVER_ENV: "300"}) as (server, hosts):
        first, big, run, cut = load_big_file(server)
        hosts[cut].plug(False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the cut lasts 30 s (the scenario), whatever happens meanwhile
            assert server.runs_for_partition(big.path.name)[-1]["status"] not in ("FAILURE", "CANCELED")
            time.sleep(2)
        hosts[cut].plug(True)
        server.wait_until(lambda: server.runs_for_partition(big.path.name)[-1]["status"] in ("SUCCESS", "FAILURE"),
                          600, "the big file's run to end")
        runs = server.runs_for_partition(big.path.name)
        assert [r["status"] for r in runs] == ["SUCCESS"], told(server, runs)
        executions = [e for e in step_events(server, run["runId"], "raw__sales") if e == "ExecutionStepStartEvent"]
        assert len(executions) == 1 and step_hosts(server, run["runId"])["raw__sales"].endswith(f"@{cut}")
        server.wait_until(server.idle, 300, "the downstream layers")
    assert_loaded_once(server, first, big)
