"""The cluster profile's execution: every step of every run on Celery workers on other hosts.

Real processes and real network: two worker hosts (network namespaces with their own addresses
and hostnames) run `celery -A platform_assets.execution worker`; Debian's Redis, the broker,
listens with a password on the control host's address on their network; `dagster dev` (webserver
and daemon) runs on the control host with PLATFORM_CELERY_BROKER set. The hosts share the file
system here (the landing folder, the embedded lake, Dagster's SQLite storage); what crosses the
network is the work.
"""

import subprocess
from collections import Counter

import pytest

from platform_assets.execution import CELERY_BROKER_ENV
from platform_assets_tests.e2e.dagster_server import BIN, REPO, dagster_dev
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


def test_every_step_runs_on_a_worker_host(tmp_path):
    with network() as net, redis([net.gateway], tmp_path / "redis") as broker:
        workdir = tmp_path / "control"
        with dagster_dev(workdir, env={CELERY_BROKER_ENV: broker}) as server:
            for name in WORKERS:
                host = net.host(name)
                host.start([str(BIN / "celery"), "-A", "platform_assets.execution", "worker", "-Q", "dagster",
                            "-c", "1", "-n", f"{name}@%h", "--loglevel", "INFO"],
                           tmp_path / f"{name}.log", env=server.env, cwd=REPO)

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
