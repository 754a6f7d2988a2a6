"""The Dagster UI in a real browser: materialize everything by hand, then read lineage and schema.

Drives Debian's Chromium with Playwright (never a downloaded browser). Screenshots go to
test-artifacts/ (and, when UPDATE_DOCS_SCREENSHOTS=1, to docs/ for the README).
"""

import re
import subprocess

import pytest

from platform_assets_tests.e2e.browser import dismiss_welcome, shoot
from platform_assets_tests.e2e.dagster_server import BIN, dagster_dev

pytestmark = pytest.mark.e2e


def test_materialize_all_from_the_ui_then_read_schema_and_lineage(tmp_path, browser):
    with dagster_dev(tmp_path) as server:
        subprocess.run([str(BIN / "platform-assets"), "land", "--data-dir", str(server.data_dir),
                        "--batch", "all", "--days", "100"], check=True, capture_output=True)
        server.wait_until(lambda: server.latest_materialization("raw", "sales"), 120, "the sensor's raw loads")

        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{server.url}/asset-groups", wait_until="networkidle")
        dismiss_welcome(page)
        page.get_by_role("button", name="Materialize all…").click()
        page.get_by_role("button", name="All", exact=True).click()  # every partition of raw/sales
        shoot(page, "ui-materialize-all.png")
        page.get_by_role("button", name=re.compile(r"^Launch")).click()  # "Launch backfill" / "Launch n runs"

        def everything_done():
            status = server.asset_status()
            return server.idle() and all(s["materialized"] and not s["checks_without_result"]
                                         for s in status.values()) and status
        status = server.wait_until(everything_done, 420, "every asset materialized and every check evaluated", every=3)
        assert set(status) == {"raw/stores", "raw/sales", "cleaned/sales", "features/sales_features",
                               "model/sales_forecast"}
        assert [r for r in server.runs() if r["status"] != "SUCCESS"] == []

        page.goto(f"{server.url}/asset-groups", wait_until="networkidle")
        for group in ("raw", "cleaned", "features", "model"):
            assert page.get_by_text(group, exact=True).first.is_visible()
        shoot(page, "ui-lineage.png")

        page.goto(f"{server.url}/assets/features/sales_features", wait_until="networkidle")
        page.get_by_text("Columns", exact=True).first.wait_for()
        for text in ("sales_lag_7", "Sales exactly 7 calendar day(s) earlier; null if that day has no row.",
                     "sales_mean_28d", "data-platform", "incremental_update"):
            assert page.get_by_text(text, exact=True).first.is_visible(), text
        shoot(page, "ui-asset-features.png")

        page.get_by_role("tab", name="Lineage").click()
        page.wait_for_load_state("networkidle")
        assert page.get_by_text("sales_features").first.is_visible()
        assert page.get_by_text("cleaned").first.is_visible()
        shoot(page, "ui-asset-lineage.png")
