"""`make cluster` brings the production shape up on this machine, and `make cluster-down` removes it all."""

import json
import subprocess
import sys
import time

import pytest

from platform_assets_tests.e2e.dagster_server import REPO, free_port
from platform_assets_tests.e2e.test_door import Door
from platform_assets_tests.e2e.test_cluster import WORKERS

pytestmark = pytest.mark.e2e

SCRIPT = REPO / "deploy" / "local_cluster.py"
DAYS = 2


def netns_names() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def wait_for(predicate, timeout: float, cluster: subprocess.Popen, log):
    """Until ``predicate`` is truthy; fails at once if the cluster's process ended, with its log."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert cluster.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"gave up after {timeout:.0f}s: {log.read_text()[-3000:]}"
        time.sleep(1)
    return value


def test_a_local_cluster_comes_up_loads_the_sample_on_its_workers_and_goes_away(tmp_path):
    folder, port = tmp_path / "cluster", free_port()
    namespaces_before = netns_names()
    log = (tmp_path / "up.log").open("w")
    cluster = subprocess.Popen([sys.executable, str(SCRIPT), "up", "--dir", str(folder), "--days", str(DAYS),
                                "--port", str(port), "--view-port", str(free_port())], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        info_file = folder / "cluster.json"
        wait_for(info_file.exists, 300, cluster, tmp_path / "up.log")
        info = json.loads(info_file.read_text())
        door = Door(info["operators"], folder / "door.crt")
        login = {"user": "operator", "password": info["passwords"]["operator"]}
        assert door.post("{ version }")[0] == 401  # the door wants a password

        query = """{ assetNodes { assetKey { path } assetMaterializations(limit: 1) { runId } } }"""

        def features_built():
            nodes = door.graphql(query, **login)["assetNodes"]
            return {"/".join(n["assetKey"]["path"]): n["assetMaterializations"] for n in nodes}[
                "features/sales_features"]
        run_id = wait_for(features_built, 600, cluster, tmp_path / "up.log")[0]["runId"]
        events = door.graphql("""query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection {
              events { __typename ... on EngineEvent { message } } } } }""", {"runId": run_id}, **login)
        on_workers = [e["message"] for e in events["logsForRun"]["events"]
                      if e["__typename"] == "EngineEvent" and "in celery worker" in (e["message"] or "")]
        assert on_workers, events
        assert len(netns_names() - namespaces_before) == len(WORKERS)
    finally:
        down = subprocess.run([sys.executable, str(SCRIPT), "down", "--dir", str(folder)], capture_output=True,
                              text=True, timeout=300)
        cluster.wait(timeout=120)
        log.close()
    assert down.returncode == 0 and "cluster removed" in down.stdout, down
    assert netns_names() == namespaces_before  # every host removed
    assert not (folder / "pid").exists()
    assert "cluster ready" in (tmp_path / "up.log").read_text()
