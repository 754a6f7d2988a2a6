"""The door to the UI (deploy/door.sh): nginx with a login and TLS in front of two loopback webservers.

Real processes throughout: `dagster dev` (webserver + daemon) and `dagster-webserver --read-only`
on loopback, Debian's nginx rendered and started by the script as an operator would, Chromium for
the UI. Proven from both sides: what a client gets, and (nginx's access log) whether the request
reached a webserver at all.
"""

import base64
import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from platform_assets_tests.e2e.browser import dismiss_welcome, shoot
from platform_assets_tests.e2e.dagster_server import BIN, REPO, dagster_dev, free_port
from platform_assets_tests.fixtures.hosts import stop_group

pytestmark = pytest.mark.e2e

DOOR = REPO / "deploy" / "door.sh"
OPERATOR, OPERATOR_PASSWORD = "ann", "operator-password-1"
VIEWER, VIEWER_PASSWORD = "vic", "viewer-password-12"
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
              __typename ... on LaunchRunSuccess { run { runId } } ... on UnauthorizedError { message }
              ... on PythonError { message } } }"""


class Door:
    """One of the door's addresses, as a client sees it: HTTPS, trusting only the door's certificate."""

    def __init__(self, url: str, cert: Path):
        self.url, self.tls = url, ssl.create_default_context(cafile=str(cert))

    def post(self, query: str, variables: dict | None = None, user: str | None = None,
             password: str | None = None) -> tuple[int, dict | str]:
        headers = {"Content-Type": "application/json"}
        if user:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(f"{self.url}/graphql", headers=headers,
                                         data=json.dumps({"query": query, "variables": variables or {}}).encode())
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.tls) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode(errors="replace")

    def graphql(self, query: str, variables: dict | None = None, *, user: str, password: str) -> dict:
        status, body = self.post(query, variables, user, password)
        assert status == 200 and not body.get("errors"), (status, body)
        return body["data"]


# a hand materialization of the cleaned layer, as the UI's Materialize button sends it
LAUNCH_CLEANED = {"params": {"selector": {"repositoryLocationName": "platform_assets", "repositoryName": "__repository__",
                                          "jobName": "__ASSET_JOB", "assetSelection": [{"path": ["cleaned", "sales"]}]},
                             "mode": "default"}}


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "door.crt", folder / "door.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@contextmanager
def process(command: list[str], log: Path, **kwargs):
    """A long-running process in its own group; the whole group is stopped at the end."""
    with log.open("w") as out:
        started = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
    try:
        yield started
    finally:
        stop_group(started)


def access_log(folder: Path) -> list[str]:
    path = folder / "access.log"
    return path.read_text().splitlines() if path.exists() else []


def test_the_door_lets_operators_launch_viewers_look_and_nobody_else_reach_dagster(tmp_path, browser):
    if shutil.which("nginx") is None:
        pytest.fail("nginx is missing: install Debian's nginx-light (.ci/run does)")
    door_dir = tmp_path / "door"
    operators, viewers = tmp_path / "operators.passwd", tmp_path / "viewers.passwd"
    for file, user, password in ((operators, OPERATOR, OPERATOR_PASSWORD), (viewers, VIEWER, VIEWER_PASSWORD)):
        subprocess.run([str(DOOR), "passwd", str(file), user], input=password, text=True, check=True)
    assert OPERATOR_PASSWORD not in operators.read_text()  # only its hash is kept
    cert, key = self_signed_certificate(tmp_path)

    with dagster_dev(tmp_path / "cluster") as server:
        read_only_port = free_port()
        viewer_webserver = [str(BIN / "dagster-webserver"), "--read-only", "-w", "workspace.yaml",
                            "-h", "127.0.0.1", "-p", str(read_only_port)]
        operators_address, viewers_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        door_env = {**os.environ, "DOOR_DIR": str(door_dir), "DOOR_OPERATORS": str(operators),
                    "DOOR_VIEWERS": str(viewers), "DOOR_TLS_CERT": str(cert), "DOOR_TLS_KEY": str(key),
                    "DOOR_LISTEN": operators_address, "DOOR_VIEW_LISTEN": viewers_address,
                    "DAGSTER_UI": server.url.removeprefix("http://"),
                    "DAGSTER_READONLY_UI": f"127.0.0.1:{read_only_port}"}
        with (process(viewer_webserver, tmp_path / "read_only_webserver.log", cwd=REPO, env=server.env),
              process([str(DOOR), "up"], tmp_path / "door.log", env=door_env)):
            ops, views = Door(f"https://{operators_address}", cert), Door(f"https://{viewers_address}", cert)
            as_operator = {"user": OPERATOR, "password": OPERATOR_PASSWORD}
            as_viewer = {"user": VIEWER, "password": VIEWER_PASSWORD}

            def both_answer():
                try:
                    return (ops.post("{ version }", **as_operator)[0] == 200
                            and views.post("{ version }", **as_viewer)[0] == 200)
                except OSError:
                    return False
            server.wait_until(both_answer, 180, "the door and both webservers")

            subprocess.run([str(BIN / "platform-assets"), "land", "--data-dir", str(server.data_dir), "--days", "1"],
                           check=True, capture_output=True)
            server.wait_until(lambda: server.latest_materialization("cleaned", "sales") and server.idle(), 300,
                              "the sensor's loads and the cleaned layer")
            runs_before = len(server.runs())

            # nobody without a password, with a wrong one, or with the other door's password gets in
            seen = len(access_log(door_dir))
            for door, credentials in ((ops, {}), (views, {}), (ops, {"user": OPERATOR, "password": "wrong-password-1"}),
                                      (ops, as_viewer), (views, as_operator)):
                status, body = door.post(LAUNCH, LAUNCH_CLEANED, **credentials)
                assert status == 401, (door.url, credentials.get("user"), body)
            # nginx logs a request just after answering it
            refused = server.wait_until(lambda: len(access_log(door_dir)) >= seen + 5 and access_log(door_dir)[seen:], 30,
                                        "the door's log of the five refusals")
            assert len(refused) == 5 and all(" 401 upstream=-" in line for line in refused), refused  # no webserver saw them

            # a viewer sees the runs but may not launch one: the read-only webserver refuses
            assert views.graphql("{ runsOrError { ... on Runs { results { runId } } } }", **as_viewer)
            refusal = views.graphql(LAUNCH, LAUNCH_CLEANED, **as_viewer)["launchRun"]
            assert refusal["__typename"] == "UnauthorizedError", refusal

            # an operator materializes by hand through the door, and the run succeeds
            launched = ops.graphql(LAUNCH, LAUNCH_CLEANED, **as_operator)["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_id = launched["run"]["runId"]
            query = '{ runOrError(runId: "%s") { ... on Run { status } } }' % run_id
            server.wait_until(lambda: ops.graphql(query, **as_operator)["runOrError"]["status"] == "SUCCESS", 180,
                              "the hand materialization through the door")
            assert len(server.runs()) == runs_before + 1  # the viewer's launch left no run behind
            assert any(f"user={OPERATOR} " in line and "upstream=" + server.url.removeprefix("http://") in line
                       for line in access_log(door_dir))

            # the UI itself, in a browser that logs in at the door
            context = browser.new_context(http_credentials={"username": OPERATOR, "password": OPERATOR_PASSWORD},
                                          ignore_https_errors=True, viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(f"{ops.url}/runs/{run_id}", wait_until="networkidle")
            dismiss_welcome(page)
            page.get_by_text("Success", exact=True).first.wait_for(timeout=60_000)
            shoot(page, "ui-behind-the-door.png")
            page.get_by_text(run_id[:8]).first.wait_for(timeout=60_000)
            page.get_by_text("cleaned / sales").first.wait_for(timeout=60_000)
            context.close()
