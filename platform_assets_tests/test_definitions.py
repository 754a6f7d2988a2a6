"""The code location loads the way `dagster dev` loads it."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_workspace_validates(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "PLATFORM_DATA_DIR": str(tmp_path / "data")}
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_definitions_hold_the_raw_layer():
    from platform_assets.definitions import defs

    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw/stores", "raw/sales"} <= keys
    assert defs.resolve_sensor_def("landing_sensor").default_status.value == "RUNNING"


def test_lake_maintenance_runs_nightly_by_default():
    from platform_assets.definitions import defs

    schedule = defs.resolve_schedule_def("nightly_lake_maintenance")
    assert schedule.default_status.value == "RUNNING" and schedule.job_name == "lake_maintenance"
