"""A real `dagster dev` (webserver + daemon) for end-to-end tests, and its GraphQL API."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from platform_assets.resources import Warehouse

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


class DagsterServer:
    def __init__(self, url: str, data_dir: Path, dagster_home: Path, log: Path, env: dict[str, str]):
        self.url, self.data_dir, self.dagster_home, self.log, self.env = url, data_dir, dagster_home, log, env

    def warehouse(self, **kwargs) -> Warehouse:
        """The lake the server's runs write (its catalog password, if any, from this process's PGPASSWORD)."""
        embedded = Warehouse.embedded(self.data_dir, **kwargs)
        return Warehouse(catalog=self.env.get("PLATFORM_LAKE_CATALOG", embedded.catalog),
                         data_path=self.env.get("PLATFORM_LAKE_DATA_PATH", embedded.data_path),
                         spill_dir=embedded.spill_dir, **kwargs)

    def query(self, sql: str) -> list[tuple]:
        """Read the lake as any reader would: read-only, while runs may be writing."""
        with self.warehouse(read_only=True).get_connection() as conn:
            return conn.sql(sql).fetchall()

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def runs(self) -> list[dict]:
        data = self.graphql("{ runsOrError(limit: 500) { ... on Runs { results { runId status "
                            "tags { key value } assetSelection { path } } } } }")
        return data["runsOrError"]["results"]

    def backfills(self) -> list[dict]:
        data = self.graphql("{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status } } } }")
        return data["partitionBackfillsOrError"]["results"]

    def latest_materialization(self, *path: str) -> dict | None:
        data = self.graphql(
            """query($path: [String!]!) { assetOrError(assetKey: {path: $path}) { ... on Asset {
                 assetMaterializations(limit: 1) { runId timestamp
                   metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }""",
            {"path": list(path)},
        )
        found = (data["assetOrError"] or {}).get("assetMaterializations") or []
        if not found:
            return None
        entry = found[0]
        return {"runId": entry["runId"], "timestamp": float(entry["timestamp"]) / 1000,
                **{m["label"]: m.get("intValue") for m in entry["metadataEntries"]}}

    def asset_status(self) -> dict[str, dict]:
        """Per asset: whether it has a materialization, and its checks without an execution."""
        data = self.graphql("""{ assetNodes { assetKey { path }
              assetMaterializations(limit: 1) { timestamp }
              assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } }
            } }""")
        return {
            "/".join(node["assetKey"]["path"]): {
                "materialized": bool(node["assetMaterializations"]),
                "checks_without_result": [c["name"] for c in (node["assetChecksOrError"] or {}).get("checks", [])
                                          if not c["executionForLatestMaterialization"]],
            }
            for node in data["assetNodes"]
        }

    def launch(self, *paths: tuple[str, ...]) -> str:
        """Start a materialization of ``paths`` and their checks, as the UI's Materialize button does."""
        data = self.graphql(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                 __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
                 ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }""",
            {"params": {"selector": {"repositoryLocationName": "platform_assets", "repositoryName": "__repository__",
                                     "jobName": "__ASSET_JOB", "assetSelection": [{"path": list(p)} for p in paths]},
                        "mode": "default"}},
        )["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launchRun: {data}")
        return data["run"]["runId"]

    def sensor_cursor(self, name: str) -> str | None:
        data = self.graphql(
            """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) { ... on Sensor {
                 sensorState { typeSpecificData { ... on SensorData { lastCursor } } } } } }""",
            {"selector": {"repositoryLocationName": "platform_assets", "repositoryName": "__repository__",
                          "sensorName": name}},
        )
        return data["sensorOrError"]["sensorState"]["typeSpecificData"]["lastCursor"]

    def sensor_tick_statuses(self, name: str) -> list[str]:
        """The statuses of the sensor's recent ticks (SUCCESS, SKIPPED, FAILURE, ...), newest first."""
        data = self.graphql(
            """query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) { ... on Sensor {
                 sensorState { ticks(limit: 500) { status } } } } }""",
            {"selector": {"repositoryLocationName": "platform_assets", "repositoryName": "__repository__",
                          "sensorName": name}},
        )
        return [t["status"] for t in data["sensorOrError"]["sensorState"]["ticks"]]

    def step_failures(self, run_id: str) -> list[str]:
        """The error messages of a run's failed steps."""
        data = self.graphql(
            """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
                 __typename ... on ExecutionStepFailureEvent { error { message } } } } } }""",
            {"runId": run_id},
        )
        return [e["error"]["message"] for e in data["logsForRun"]["events"]
                if e["__typename"] == "ExecutionStepFailureEvent"]

    def run_story(self, run_id: str) -> list[str]:
        """A run's failures and engine messages, in order: what a failing test prints to say why."""
        data = self.graphql(
            """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
                 __typename ... on MessageEvent { message stepKey timestamp }
                 ... on ErrorEvent { error { message } } } } } }""",
            {"runId": run_id},
        )
        told = ("Failure", "Engine", "Retry", "Restart", "Canceled", "Launched")
        return [f"{e['__typename']} {e.get('stepKey') or ''}: {e.get('message') or ''} "
                f"{(e.get('error') or {}).get('message') or ''}".strip()
                for e in data["logsForRun"]["events"] if any(w in e["__typename"] for w in told)]

    def runs_for_partition(self, partition: str) -> list[dict]:
        return [r for r in self.runs() if {"key": "dagster/partition", "value": partition} in r["tags"]]

    def wait_until(self, predicate, timeout: float, what, every: float = 1.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        what = what() if callable(what) else what  # a callable says what is still missing at the end
        raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}; server log: {self.log}")

    def idle(self) -> bool:
        return all(r["status"] not in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
                   for r in self.runs())


@contextmanager
def fresh_postgres_database(server_url: str):
    """A new, empty database on the server of ``server_url`` for one test; dropped afterwards."""
    import uuid

    import psycopg2

    name = f"dagster_e2e_{uuid.uuid4().hex[:12]}"

    def as_admin(statement: str) -> None:  # a connection each time: a test may restart the server meanwhile
        admin = psycopg2.connect(server_url)
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(statement)
        finally:
            admin.close()

    as_admin(f"CREATE DATABASE {name}")
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        as_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dagster_dev(workdir: Path, *, sensor_interval: int = 2, automation_interval: int = 5,
                instance_yaml: Path = REPO / "dagster.yaml", env: dict[str, str] | None = None):
    """Start `dagster dev` on a free loopback port with its own DAGSTER_HOME and data dir; always stop it.

    Started again on the same ``workdir`` it carries on with the same instance and data (a restart).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    dagster_home, data_dir = workdir / "dagster_home", workdir / "data"
    log = workdir / f"dagster_dev.{len(list(workdir.glob('dagster_dev*.log')))}.log"
    if not (dagster_home / "dagster.yaml").exists():
        dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(instance_yaml, dagster_home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PLATFORM_DATA_DIR": str(data_dir),
           "PLATFORM_SENSOR_INTERVAL_SECONDS": str(sensor_interval),
           "PLATFORM_AUTOMATION_INTERVAL_SECONDS": str(automation_interval),
           "PLATFORM_UI_URL": f"http://127.0.0.1:{port}", **(env or {})}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = DagsterServer(f"http://127.0.0.1:{port}", data_dir, dagster_home, log, env)
    server.pid = process.pid  # the process group of everything dagster dev starts
    try:
        server.wait_until(lambda: _answers(server) or process.poll() is not None, 180, "the webserver")
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}: {log.read_text()[-3000:]}")
        yield server
    finally:
        _stop(process)


def _answers(server: DagsterServer) -> bool:
    try:
        server.graphql("{ version }")
        return True
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    """Stop dagster dev and everything it started (webserver, daemon, code server, runs)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group
        except ProcessLookupError:
            pass
