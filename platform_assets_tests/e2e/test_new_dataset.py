"""A new landed dataset, declared with a defs.yaml and a Soda contract only, against a real `dagster dev`.

The dataset folder is copied into a temporary defs folder beside the code location's own
(``PLATFORM_DEFS_DIR``): no Python is written or changed. The UI shows its asset, column
schema and checks; a good file is loaded, checked and verified; a malformed one is
quarantined with its reason and line; a failing blocking check keeps its file unverified
(what layers built on it would read) and pages once; `platform-assets versions` lists it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from platform_assets.settings import Settings
from platform_assets.warehouse.lake import LakeError
from platform_assets_tests.e2e.dagster_server import dagster_dev
from platform_assets_tests.fixtures.receivers import Webhook

pytestmark = pytest.mark.e2e

DEFS_YAML = """\
type: platform_assets.datasets.LandedDataset
attributes:
  table: raw.fuel_prices
  description: Daily fuel price per state, as landed.
  owners: ["team:pricing"]
  files:
    pattern: "fuel_{day:date}.csv"
    each_file: replaces_its_rows
  columns:
    - {name: State, type: VARCHAR, required: true, description: "German state, two letters."}
    - {name: Day, type: DATE, required: true, description: "The day."}
    - {name: PriceEur, type: "DECIMAL(5,3)", required: true, description: "Litre of diesel, euros."}
  key: [State, Day]
  dates_in: Day
  parse: {delimiter: ";", decimal_separator: ","}
"""
CONTRACT = """\
columns:
- name: PriceEur
  checks:
  - invalid:
      qualifier: price_positive
      name: "A price is above zero."
      valid_min: 0.001
"""
HEADER = "State;Day;PriceEur"


def land(landing: Path, name: str, text: str) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    hidden = landing / f".{name}.tmp"
    hidden.write_text(text)
    os.replace(hidden, landing / name)


def test_a_dataset_declared_in_yaml_only_is_loaded_checked_quarantined_and_alerted(tmp_path):
    defs = tmp_path / "defs"
    shutil.copytree(Settings.from_env().defs_dir, defs, ignore=shutil.ignore_patterns("__pycache__"))
    (defs / "fuel_prices").mkdir()
    (defs / "fuel_prices" / "defs.yaml").write_text(DEFS_YAML)
    (defs / "fuel_prices" / "contract.yml").write_text(CONTRACT)
    hook = Webhook().start()
    env = {"PLATFORM_DEFS_DIR": str(defs), "PLATFORM_ALERT_URLS": hook.url, "PLATFORM_ALERT_GROUP_SECONDS": "2",
           "PLATFORM_LANDING_QUIET_SECONDS": "1"}
    try:
        with dagster_dev(tmp_path / "server", env=env) as server:
            # the UI knows it: asset, column schema from the YAML, checks from the contract and the platform
            node = server.graphql("""{ assetNodeOrError(assetKey: {path: ["raw", "fuel_prices"]}) { ... on AssetNode {
                 description owners { ... on TeamAssetOwner { team } }
                 metadataEntries { label ... on TableSchemaMetadataEntry { schema { columns { name type } } } }
                 assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } } }""")["assetNodeOrError"]
            (schema,) = [m["schema"] for m in node["metadataEntries"] if m["label"] == "dagster/column_schema"]
            assert [(c["name"], c["type"]) for c in schema["columns"]][:3] == [
                ("State", "VARCHAR"), ("Day", "DATE"), ("PriceEur", "DECIMAL(5,3)")]
            assert node["owners"] == [{"team": "pricing"}] and "Daily fuel price" in node["description"]
            checks = {c["name"]: c["blocking"] for c in node["assetChecksOrError"]["checks"]}
            assert checks == {"raw_fuel_prices_schema": True, "state_not_missing": True, "day_not_missing": True,
                              "price_eur_not_missing": True, "dates_within_file_name": True, "price_positive": True}

            landing = server.data_dir / "landing"
            land(landing, "fuel_2015-07-01.csv", f"{HEADER}\nBY;2015-07-01;1,219\nBE;2015-07-01;1,235\n")
            server.wait_until(lambda: verified(server, "fuel_2015-07-01.csv"), 180, "the good file verified")
            assert server.query("SELECT State, PriceEur::VARCHAR FROM raw.fuel_prices ORDER BY 1") == [
                ("BE", "1.235"), ("BY", "1.219")]

            land(landing, "fuel_2015-07-02.csv", f"{HEADER}\nBY;2015-07-02;1,221\nBE;2015-07-02;cheap\n")
            reason = server.data_dir / "quarantine" / "fuel_2015-07-02.csv.reason.txt"
            server.wait_until(reason.exists, 180, "the malformed file quarantined")
            assert "Line: 3" in reason.read_text() and "cheap" in reason.read_text()

            land(landing, "fuel_2015-07-03.csv", f"{HEADER}\nBY;2015-07-03;-1,000\nBE;2015-07-03;1,240\n")
            server.wait_until(lambda: any("price_positive" in m["title"] for m in hook.messages()), 180,
                              "the alert about the failing check")
            assert server.query("SELECT count(*), count(verified_at) FROM ops.landed_files "
                                "WHERE file_name = 'fuel_2015-07-03.csv'") == [(1, 0)]  # loaded, kept out
            titles = [m["title"] for m in hook.messages()]
            assert sum("price_positive" in t for t in titles) == 1, titles

            versions = subprocess.run([sys.executable, "-m", "platform_assets.cli", "versions", "raw.fuel_prices"],
                                      env={**os.environ, **server.env}, capture_output=True, text=True)
            assert versions.returncode == 0, versions.stderr
            assert "load fuel_2015-07-01.csv into raw.fuel_prices" in versions.stdout
            assert "load fuel_2015-07-03.csv into raw.fuel_prices" in versions.stdout
    finally:
        hook.stop()


def verified(server, name: str) -> bool:
    try:
        return server.query(f"SELECT count(verified_at) FROM ops.landed_files WHERE file_name = '{name}'") == [(1,)]
    except (LakeError, duckdb.CatalogException):  # no lake yet, or the first load has not created its ledger yet
        return False
