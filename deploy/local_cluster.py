"""The production shape on one machine, in one command: `make cluster` (up) and `make cluster-down`.

    up    worker hosts (network namespaces with their own addresses and hostnames, on a bridge),
          Redis (the Celery broker), SeaweedFS (the lake's bucket and the landing zone's: landing,
          archive, quarantine; one S3 identity per role),
          PostgreSQL (Dagster's storage and the lake's catalog; Debian's, via deploy/postgres.sh),
          on the control host the daemon, a webserver and a read-only one on loopback, and the
          door (deploy/door.sh: nginx with passwords and TLS) in front of them; lands the sample
          data and prints where to log in. Runs in the foreground until Ctrl-C or `down`.
    down  stops a running cluster and removes everything it made (hosts, links, processes,
          its databases); its folder (.cluster/ by default) is kept for its logs.

Nothing of the data is on the machine's disk: `platform-assets land` uploads the sample into
s3://landing/. Needs root (network namespaces), Debian's nginx and redis-server.
"""

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from platform_assets_tests.e2e.dagster_server import BIN, free_port  # noqa: E402
from platform_assets_tests.fixtures.cluster import INSTANCE, production_services, start_workers  # noqa: E402
from platform_assets_tests.fixtures.hosts import stop_group  # noqa: E402

WORKERS = ("worker-1", "worker-2")
READY = "cluster ready"


def up(folder: Path, days: int | None, door_port: int, view_port: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pid").write_text(str(os.getpid()))
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    with ExitStack() as stack:
        stack.callback((folder / "pid").unlink, missing_ok=True)
        server_url = subprocess.run([str(REPO / "deploy" / "postgres.sh")], check=True, capture_output=True,
                                    text=True).stdout.strip()
        services = stack.enter_context(production_services(folder, server_url, object_store=True))
        home, data = folder / "dagster_home", folder / "data"
        home.mkdir(exist_ok=True)
        (home / "dagster.yaml").write_text(INSTANCE.read_text())
        webserver, read_only = free_port(), free_port()
        env = {**os.environ, **services.env, "DAGSTER_HOME": str(home), "PLATFORM_DATA_DIR": str(data),
               "PLATFORM_UI_URL": f"https://127.0.0.1:{door_port}"}

        def control(name: str, command: list[str], extra: dict | None = None) -> None:
            with (folder / f"{name}.log").open("w") as log:
                process = subprocess.Popen(command, cwd=REPO, env={**env, **(extra or {})}, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            stack.callback(stop_group, process)

        control("daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"])
        control("webserver", [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                              "-p", str(webserver)])
        control("webserver-read-only", [str(BIN / "dagster-webserver"), "--read-only", "-w", "workspace.yaml",
                                        "-h", "127.0.0.1", "-p", str(read_only)])
        hosts = start_workers(services.net, WORKERS, env, folder)

        passwords = {"operator": secrets.token_urlsafe(12), "viewer": secrets.token_urlsafe(12)}
        for role, password in passwords.items():
            subprocess.run([str(REPO / "deploy" / "door.sh"), "passwd", str(folder / f"{role}s.passwd"), role],
                           input=password, text=True, check=True)
        cert, key = folder / "door.crt", folder / "door.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        control("door", [str(REPO / "deploy" / "door.sh"), "up"], {
            "DOOR_DIR": str(folder / "door"), "DOOR_OPERATORS": str(folder / "operators.passwd"),
            "DOOR_VIEWERS": str(folder / "viewers.passwd"), "DOOR_TLS_CERT": str(cert), "DOOR_TLS_KEY": str(key),
            "DOOR_LISTEN": f"127.0.0.1:{door_port}", "DOOR_VIEW_LISTEN": f"127.0.0.1:{view_port}",
            "DAGSTER_UI": f"127.0.0.1:{webserver}", "DAGSTER_READONLY_UI": f"127.0.0.1:{read_only}"})

        for port in (webserver, read_only):
            _wait_for_webserver(port, folder)
        for port in (door_port, view_port):
            _wait_for_port(port, folder)
        land = [str(BIN / "platform-assets"), "land", "--data-dir", str(data), "--batch", "all", "--weather"]
        subprocess.run([*land, *(["--days", str(days)] if days else [])], check=True, capture_output=True, env=env)
        info = {"operators": f"https://127.0.0.1:{door_port}", "viewers": f"https://127.0.0.1:{view_port}",
                "passwords": passwords, "certificate": str(cert), "hosts": {name: host.address for name, host in hosts.items()},
                "object_store": services.store.endpoint, "reader_identity": services.store.env("lake-reader"),
                "lake_catalog": env["PLATFORM_LAKE_CATALOG"], "folder": str(folder)}
        (folder / "cluster.json").write_text(json.dumps(info, indent=2))
        print(f"{READY}: the UI at {info['operators']} (user operator, password {passwords['operator']}), "
              f"read-only at {info['viewers']} (user viewer, password {passwords['viewer']}); the certificate "
              f"is self-signed ({cert}); logs and cluster.json in {folder}; stop with Ctrl-C or make cluster-down",
              flush=True)
        try:
            while not stopping:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        print("stopping the cluster and removing its hosts, links, processes and databases", flush=True)


def _wait_for_webserver(port: int, folder: Path, timeout: float = 300) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the webserver on port {port} did not answer in {timeout:.0f}s; logs in {folder}")
            time.sleep(1)


def _wait_for_port(port: int, folder: Path, timeout: float = 60) -> None:
    """Until something listens on the port (the door: nginx checks its configuration first)."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the door did not listen on port {port} in {timeout:.0f}s; see {folder}/door.log")
            time.sleep(0.5)


def down(folder: Path) -> None:
    pid_file = folder / "pid"
    if not pid_file.exists():
        print(f"no cluster is running from {folder}")
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink()
        print(f"the cluster of {folder} was not running any more")
        return
    deadline = time.monotonic() + 120
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    if pid_file.exists():
        sys.exit(f"the cluster (pid {pid}) did not stop within 120 s; see {folder}")
    print("cluster removed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=REPO / ".cluster", help="its folder (default .cluster/)")
    parser.add_argument("--days", type=int, default=None, help="days of sample sales to land (default: all 942)")
    parser.add_argument("--port", type=int, default=8443, help="the door's port for operators (default 8443)")
    parser.add_argument("--view-port", type=int, default=None, help="the door's port for viewers (default --port + 1)")
    args = parser.parse_args()
    if args.command == "up":
        up(args.dir.resolve(), args.days, args.port, args.view_port or args.port + 1)
    else:
        down(args.dir.resolve())


if __name__ == "__main__":
    main()
