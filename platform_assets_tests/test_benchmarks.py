"""The benchmark harness runs end to end, and its pandas baseline computes what the platform computes."""

import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.transforms.features import COLUMNS
from platform_assets.sample_data.land import land
from platform_assets_tests.conftest import lake

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import latency  # noqa: E402  (benchmarks/ is not a package)
import pandas_pipeline  # noqa: E402
import scale  # noqa: E402


def test_pipeline_benchmark_smoke():
    """`make bench` on tiny data: every scenario at both scales, and a verdict for every target."""
    done = subprocess.run([sys.executable, "benchmarks/pipeline.py", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.split("scenario", 1)[1]
    for scenario in ("duckdb scan", "pandas baseline", "platform full", "platform +1 day"):
        assert [line.split()[len(scenario.split())] for line in table.splitlines()
                if line.startswith(scenario)] == ["1x", "4x"], scenario
    verdicts = [line for line in table.splitlines() if line.startswith(("met", "MISSED"))]
    assert len(verdicts) == 2 * 3 + 3  # three per scale, three for the growth from 1x to 4x
    platform_rows = [int(line.split()[5].replace(",", "")) for line in table.splitlines()
                     if line.startswith("platform full")]
    assert platform_rows[1] > 3.9 * platform_rows[0]  # 4x the stores really is ~4x the rows


@pytest.mark.e2e
def test_cluster_benchmark_smoke():
    """`make bench-cluster` on tiny data: both configurations finish, every step on the workers it had."""
    if not os.environ.get("PLATFORM_TEST_POSTGRES_URL"):
        pytest.skip("PLATFORM_TEST_POSTGRES_URL is not set: run `make postgres` first (.ci/run does)")
    done = subprocess.run([sys.executable, "benchmarks/cluster.py", "--smoke"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = (line for line in done.stdout.splitlines() if "steps by host" in line)
    assert "{'worker-1': " in one and "worker-2" not in one  # one host did every step
    assert set(re.findall(r"'(worker-\d)'", two)) <= {"worker-1", "worker-2"}
    assert re.search(r"speed-up with two worker hosts: \d+\.\d\dx", done.stdout)
    assert len(re.findall(r"of its CPU on the workers' steps", done.stdout)) == 2


def test_scale_benchmark_smoke(tmp_path):
    """`make bench-scale` on tiny data: every scenario at each scale, the split of one more day, a verdict, a plot."""
    plot = tmp_path / "scale.png"
    done = subprocess.run([sys.executable, "benchmarks/scale.py", "--smoke", "--scales", "1", "2", "--plot", str(plot)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout.split("scenario", 1)[1]
    for scenario in scale.SCENARIOS:
        assert [line[len(scenario):].split()[0] for line in table.splitlines()
                if line.startswith(scenario + " ")] == ["1x", "2x"], scenario
    rows = [int(line.split()[3].replace(",", "")) for line in table.splitlines() if line.startswith("platform full")]
    assert rows[1] > 1.9 * rows[0]  # twice the stores really is ~twice the rows
    assert "fixed +" in table and " 2x " in table.split("fixed +", 1)[1]
    (verdict,) = [line for line in table.splitlines() if "time per row" in line]
    assert verdict.startswith(("met", "MISSED"))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


@pytest.mark.parametrize("program, cap_bytes, seconds, told", [
    ("x = bytearray(1_500 * 2**20); x[::4096] = b'x' * len(x[::4096])", 600 * 2**20, 120, "out of memory"),
    ("import time; time.sleep(60)", 2**30, 2, "over the time cap of 2 s"),
    ("raise SystemExit('no data here')", 2**30, 120, "failed (exit 1): no data here"),
])
def test_a_scenario_that_does_not_fit_fails_alone_and_says_why(program, cap_bytes, seconds, told):
    figure, why, elapsed, _ = scale.run_capped([sys.executable, "-c", program], cap_bytes, seconds)
    assert figure is None and why.startswith(told)
    assert elapsed < 60  # stopped by its cap, not by finishing


def test_storage_benchmark_smoke():
    """`make bench-storage` on tiny objects: both clients and the local folder, every operation, a ratio each."""
    done = subprocess.run([sys.executable, "benchmarks/landing_storage.py", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith(("list", "hash", "copy"))]
    assert [row.split()[0] + (" across" if " across " in row else "") for row in rows] == [
        "list", "hash", "copy", "copy across"]
    assert all(re.fullmatch(r".*\d+\.\d{3}s +\d+\.\d{3}s +\d+\.\d{3}s +\d+\.\d\dx", row) for row in rows), rows


@pytest.mark.e2e
def test_latency_benchmark_smoke():
    """`make bench-latency` on one file and a few idle seconds: every figure and a verdict for each goal."""
    done = subprocess.run([sys.executable, "benchmarks/latency.py", "--files", "1", "--idle", "3", "--settle", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert [line.split()[0] for line in lines if line.startswith(("p50", "p90"))] == ["p50", "p90"]
    assert all(line.rsplit(": ", 1)[1] in ("met", "MISSED") for line in lines if line.startswith(("p50", "p90")))
    stages = {line.rsplit(None, 1)[0]: float(line.rsplit(None, 1)[1]) for line in lines
              if line.rsplit(None, 1)[0] in latency.STAGES}
    assert set(stages) == set(latency.STAGES)
    assert 0 < stages["total"] < 300 and sum(v for k, v in stages.items() if k != "total") == pytest.approx(
        stages["total"], abs=0.5)  # the stages add up to the whole way
    (idle,) = [line for line in lines if line.startswith("idle dagster dev")]
    assert idle.rsplit(": ", 1)[1] in ("met", "MISSED")


def test_pandas_baseline_builds_the_platforms_features(data_dir, load, resources, instance, tmp_path):
    """Same cleaning, same features: the comparison is like for like (and the baseline's checks pass)."""
    land(data_dir, batch="all", first=date(2014, 6, 1), days=60)  # crosses the 180-store gap of July 2014
    shutil.copytree(data_dir / "landing", tmp_path / "files")
    expected, failures = pandas_pipeline.run(tmp_path / "files")
    assert not {name: count for name, count in failures.items() if count}
    assert load().success and load("sales_2014-06-01_2014-07-30.csv").success
    assert dg.materialize([cleaned_sales, sales_features], resources=resources, instance=instance).success
    with lake(data_dir) as conn:
        actual = conn.sql("SELECT * EXCLUDE (_updated_at) FROM features.sales_features").pl()

    def comparable(frame: pl.DataFrame) -> pl.DataFrame:
        frame = frame.select(list(COLUMNS))
        numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
        return frame.with_columns(pl.col("date").cast(pl.Date), pl.col(numeric).cast(pl.Float64)).sort("store", "date")

    assert actual.height == len(expected) == 1115 * 30 + 935 * 30
    assert_frame_equal(comparable(pl.from_pandas(expected)), comparable(actual), check_exact=False, rel_tol=1e-9)
