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
                        "--batch", "all", "--days", "100", "--weather"], check=True, capture_output=True)
        server.wait_until(lambda: server.latest_materialization("raw", "sales"), 120, "the sensor's raw loads")

        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{server.url}/asset-groups", wait_until="networkidle")
        dismiss_welcome(page)
        page.get_by_role("button", name="Materialize all…").click()
        # the landed datasets have their own partitions (one per file): the backfill takes all of each
        page.get_by_text("All partitions", exact=True).wait_for()
        shoot(page, "ui-materialize-all.png")
        page.get_by_role("button", name=re.compile(r"^Launch")).click()  # "Launch backfill" / "Launch n runs"

        server.wait_until(server.backfills, 60, "the backfill launched from the UI")
        page.goto("about:blank")  # the live lineage page is heavy on 2 cores: closed while the runs work
        pending = {}

        def everything_done():
            pending.clear()  # what is still missing, for the timeout's message
            pending["backfills"] = [b for b in server.backfills() if b["status"] != "COMPLETED_SUCCESS"]
            pending["runs"] = [(r["runId"][:8], r["status"]) for r in server.runs()
                               if r["status"] not in ("SUCCESS", "FAILURE", "CANCELED")]
            if any(pending.values()):
                return False
            status = server.asset_status()
            pending.update({a: s for a, s in status.items() if not s["materialized"] or s["checks_without_result"]})
            return not any(pending.values()) and status
        status = server.wait_until(everything_done, 420,
                                   lambda: f"the backfill done, every check evaluated; still pending: {pending}",
                                   every=3)
        assert set(status) == {"raw/stores", "raw/sales", "raw/store_states", "raw/weather", "cleaned/sales",
                               "features/sales_features", "model/sales_forecast"}
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
