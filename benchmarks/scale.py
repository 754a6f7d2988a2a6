"""The cost curve: the platform, the pandas pipeline and DuckDB's floor at 1x, 4x, 16x and 32x the stores.

Every figure is its own process (``benchmarks/pipeline.py --child``), run under a
memory cap (a memory cgroup where this machine has one, else an address-space
limit) and a time cap, so a scenario that does not fit fails alone and is
reported as such, with how far it got, never left out:

- ``duckdb scan``: DuckDB parsing the sales CSV (the floor of reading);
- ``duckdb scan+write``: the same, also written once as Parquet (the floor of the data work);
- ``pandas baseline``: the classic pandas script (``benchmarks/pandas_pipeline.py``);
- ``platform full``: raw -> cleaned -> features with every Soda check, the full history;
- ``platform +1 day``: then one more day (as many rows as stores) through every layer.

It prints a table and the goals of the scale issue (#25), and writes a log-log
plot of time and peak memory against rows (``--plot``, PNG).

    .venv/bin/python benchmarks/scale.py                   # 1x 4x 16x 32x (about 20 minutes on 2 cores)
    .venv/bin/python benchmarks/scale.py --scales 1 4      # a quick curve
    .venv/bin/python benchmarks/scale.py --smoke           # tiny data, checks the harness (make test runs it)
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pipeline  # benchmarks/pipeline.py: the scenarios and the data

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GiB = 1024**3

SCENARIOS = ("duckdb scan", "duckdb scan+write", "pandas baseline", "platform full", "platform +1 day")
# the goals of the scale issue (#25)
SPEED_AT_16X = 4.0  # full history, times the pandas baseline's speed
MEMORY_AT_16X = 0.15  # full history, peak memory / pandas'
TIME_32X_OVER_16X = 2.5
MEMORY_AT_32X_MB = 4096  # full history's peak, and at most the platform's own limit
DAY_32X_OVER_1X = 3.0
FLOOR_RATIO = 8.0  # the platform's full history / the DuckDB floor's time, at 16x and 32x
FLAT = 1.10  # "falls or stays flat": time per row may grow at most this much from one scale to the next


@dataclass(frozen=True)
class Outcome:
    scenario: str
    scale: int
    seconds: float
    peak_rss_mb: float
    rows: int
    failure: str = ""  # why it stopped, if it did not finish

    @property
    def finished(self) -> bool:
        return not self.failure

    @property
    def us_per_row(self) -> float:
        return self.seconds / self.rows * 1e6 if self.rows else float("nan")


# --- the caps -------------------------------------------------------------------------------------

class MemoryCap:
    """A memory limit for one child: its own cgroup (v1 or v2) if this process may make one, else RLIMIT_AS.

    A cgroup limits what the child really uses (the kernel kills only it when it goes over);
    an address-space limit also counts memory reserved but never touched, so it is the fallback.
    """

    def __init__(self, limit_bytes: int):
        self.limit = limit_bytes
        self.path = self._make_cgroup()

    @property
    def kind(self) -> str:
        return "cgroup" if self.path else "address-space limit"

    def _make_cgroup(self) -> Path | None:
        for parent, limit_file in self._cgroup_parents():
            path = parent / f"platform-bench-{os.getpid()}-{time.monotonic_ns()}"
            try:
                path.mkdir()
                (path / limit_file).write_text(str(self.limit))
                if limit_file == "memory.max":
                    (path / "memory.swap.max").write_text("0")
                return path
            except OSError:
                if path.exists():
                    path.rmdir()
        return None

    @staticmethod
    def _cgroup_parents():
        """Where this process's memory cgroup is, as (folder, limit file), v2 first."""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            number, controllers, where = line.split(":", 2)
            if number == "0" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
                yield Path("/sys/fs/cgroup") / where.lstrip("/"), "memory.max"
            elif "memory" in controllers.split(","):
                yield Path("/sys/fs/cgroup/memory") / where.lstrip("/"), "memory.limit_in_bytes"

    def enter(self) -> None:
        """In the child, before it runs anything."""
        if self.path:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))
        else:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (self.limit, self.limit))

    def was_exceeded(self) -> bool:
        if not self.path:
            return False
        for name in ("memory.events", "memory.oom_control"):
            try:
                text = (self.path / name).read_text()
            except OSError:
                continue
            counts = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
            return int(counts.get("oom_kill", 0)) > 0
        return False

    def peak_mb(self) -> float:
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            try:
                return int((self.path / name).read_text()) / 2**20
            except (OSError, TypeError, ValueError):
                continue
        return float("nan")

    def remove(self) -> None:
        if self.path and self.path.exists():
            self.path.rmdir()


def run_capped(command: list[str], memory_bytes: int, seconds: float) -> tuple[dict | None, str, float, float]:
    """Run ``command`` under both caps: (its JSON figure or None, why it failed or "", seconds, peak MB seen)."""
    cap = MemoryCap(memory_bytes)
    started = time.monotonic()
    try:
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=cap.enter, start_new_session=True)
        timer = threading.Timer(seconds, lambda: os.killpg(child.pid, signal.SIGKILL))
        timer.start()
        try:
            out, err = child.communicate()
        finally:
            timer.cancel()
        elapsed = time.monotonic() - started
        if child.returncode == 0:
            return json.loads(out.strip().splitlines()[-1]), "", elapsed, cap.peak_mb()
        if elapsed >= seconds:
            why = f"over the time cap of {seconds:.0f} s"
        elif cap.was_exceeded() or child.returncode == -signal.SIGKILL or "MemoryError" in err \
                or "Out of Memory" in err or "memory allocation" in err:
            why = f"out of memory (over the {memory_bytes / GiB:.1f} GiB {cap.kind})"
        else:
            why = f"failed (exit {child.returncode}): {(err.strip().splitlines() or ['no message'])[-1][:160]}"
        return None, why, elapsed, cap.peak_mb()
    finally:
        cap.remove()


# --- the scenarios --------------------------------------------------------------------------------

def measure(scenario: str, scale: int, data_dir: Path, memory_bytes: int, seconds: float) -> Outcome:
    command = [sys.executable, str(HERE / "pipeline.py"), "--child", scenario, str(data_dir)]
    figure, why, elapsed, cap_peak = run_capped(command, memory_bytes, seconds)
    if figure is None:
        outcome = Outcome(scenario, scale, elapsed, cap_peak, 0, why)
        print(f"  {scenario:<18} {scale:>2}x  did not finish: {why}, after {elapsed:.0f} s at {cap_peak:,.0f} MB",
              flush=True)
    else:
        outcome = Outcome(scenario, scale, figure["seconds"], figure["peak_rss_mb"], figure["rows"])
        print(f"  {scenario:<18} {scale:>2}x  {outcome.seconds:8.2f} s  {outcome.peak_rss_mb:8,.0f} MB  "
              f"{outcome.rows:>12,} rows", flush=True)
    return outcome


def bench_scale(scale: int, workdir: Path, days: int | None, n_stores: int, memory_bytes: int,
                seconds: float) -> list[Outcome]:
    data_dir = workdir / f"{scale}x"
    pipeline.land_history(data_dir, n_stores * scale, days)
    outcomes = [measure(s, scale, data_dir, memory_bytes, seconds) for s in SCENARIOS[:-1]]
    if outcomes[-1].finished:
        pipeline.land_next_day(data_dir, n_stores * scale, days)
        outcomes.append(measure("platform +1 day", scale, data_dir, memory_bytes, seconds))
    else:
        outcomes.append(Outcome("platform +1 day", scale, 0, 0, 0, "not run: the full history did not finish"))
    shutil.rmtree(data_dir, ignore_errors=True)  # 32x is gigabytes
    return outcomes


# --- the report -----------------------------------------------------------------------------------

def table(outcomes: list[Outcome]) -> list[str]:
    lines = [f"{'scenario':<19}{'stores':>7}{'rows':>13}{'seconds':>10}{'peak MB':>10}{'rows/s':>12}{'us/row':>9}"
             f"{'vs pandas':>11}{'mem vs pandas':>15}",
             "-" * 105]
    by = {(o.scenario, o.scale): o for o in outcomes}
    for o in outcomes:
        if not o.finished:
            lines.append(f"{o.scenario:<19}{str(o.scale) + 'x':>7}  did not finish: {o.failure}"
                         + (f" (after {o.seconds:.0f} s, {o.peak_rss_mb:,.0f} MB)" if o.seconds else ""))
            continue
        base = by.get(("pandas baseline", o.scale))
        versus = (f"{base.seconds / o.seconds:>10.1f}x{o.peak_rss_mb / base.peak_rss_mb:>15.0%}"
                  if base is not None and base.finished and o.scenario != "platform +1 day" else "")
        lines.append(f"{o.scenario:<19}{str(o.scale) + 'x':>7}{o.rows:>13,}{o.seconds:>10.2f}{o.peak_rss_mb:>10,.0f}"
                     f"{o.rows / o.seconds:>12,.0f}{o.us_per_row:>9.2f}{versus}")
    return lines


def day_split(outcomes: list[Outcome]) -> list[str]:
    """One more day's seconds as fixed + per-row cost: a least-squares line through (rows of the day, seconds)."""
    days = sorted((o for o in outcomes if o.scenario == "platform +1 day" and o.finished), key=lambda o: o.rows)
    if len(days) < 2:
        return []
    n = len(days)
    mean_x, mean_y = sum(o.rows for o in days) / n, sum(o.seconds for o in days) / n
    slope = (sum((o.rows - mean_x) * (o.seconds - mean_y) for o in days)
             / (sum((o.rows - mean_x) ** 2 for o in days) or 1))
    fixed = mean_y - slope * mean_x
    lines = [f"one more day = {fixed:.2f} s fixed + {slope * 1e6:.1f} us per row of the day (least squares):"]
    lines += [f"  {o.scale:>2}x  {o.rows:>7,} rows  {o.seconds:6.2f} s = {fixed:.2f} fixed + "
              f"{o.seconds - fixed:5.2f} per-row ({(o.seconds - fixed) / o.seconds:.0%})" for o in days]
    return lines


def goals(outcomes: list[Outcome], platform_limit_mb: float) -> list[str]:
    by = {(o.scenario, o.scale): o for o in outcomes}
    lines = []

    def verdict(label: str, met: bool | None, detail: str) -> None:
        lines.append(f"{'n/a   ' if met is None else 'met   ' if met else 'MISSED'} {label}: {detail}")

    def get(scenario: str, scale: int) -> Outcome | None:
        o = by.get((scenario, scale))
        return o if o is not None and o.finished else None

    full16, pandas16 = get("platform full", 16), get("pandas baseline", 16)
    if ("platform full", 16) in by:
        if full16 and pandas16:
            speed, memory = pandas16.seconds / full16.seconds, full16.peak_rss_mb / pandas16.peak_rss_mb
            verdict("16x full history, speed vs pandas", speed >= SPEED_AT_16X, f"{speed:.1f}x (>= {SPEED_AT_16X:.0f}x)")
            verdict("16x full history, peak memory / pandas'", memory <= MEMORY_AT_16X,
                    f"{memory:.0%} (<= {MEMORY_AT_16X:.0%})")
        else:
            verdict("16x full history vs pandas", full16 is not None and pandas16 is None,
                    "platform " + ("finished" if full16 else "did not finish")
                    + ", pandas " + ("finished" if pandas16 else "did not finish"))
    if ("platform full", 32) in by:
        full32, pandas32 = get("platform full", 32), get("pandas baseline", 32)
        limit_mb = min(MEMORY_AT_32X_MB, platform_limit_mb)
        verdict("32x full history completes within 4 GiB and the memory limit",
                full32 is not None and full32.peak_rss_mb <= limit_mb,
                f"{'%.0f MB' % full32.peak_rss_mb if full32 else 'did not finish'} (<= {limit_mb:,.0f} MB); "
                f"pandas: {'%.0f MB' % pandas32.peak_rss_mb if pandas32 else by[('pandas baseline', 32)].failure}")
        if full32 and full16:
            ratio = full32.seconds / full16.seconds
            verdict("32x full history time / 16x", ratio <= TIME_32X_OVER_16X, f"{ratio:.2f} (<= {TIME_32X_OVER_16X})")
    fulls = sorted((o for o in outcomes if o.scenario == "platform full" and o.finished), key=lambda o: o.scale)
    if len(fulls) > 1:
        steps = [b.us_per_row / a.us_per_row for a, b in zip(fulls, fulls[1:])]
        verdict("full history time per row falls or stays flat as data grows", max(steps) <= FLAT,
                " -> ".join(f"{o.us_per_row:.2f} ({o.scale}x)" for o in fulls)
                + f" us/row; each step <= {FLAT:.2f}x the one before")
    day1, day32 = get("platform +1 day", 1), get("platform +1 day", 32)
    if day1 and day32:
        ratio = day32.seconds / day1.seconds
        verdict("one more day at 32x / at 1x", ratio <= DAY_32X_OVER_1X, f"{ratio:.2f} (<= {DAY_32X_OVER_1X:.0f})")
    for scale in (16, 32):
        full, scan, write = get("platform full", scale), get("duckdb scan", scale), get("duckdb scan+write", scale)
        if full and scan:
            ratio = full.seconds / scan.seconds
            verdict(f"{scale}x platform / DuckDB floor (scan)", ratio <= FLOOR_RATIO,
                    f"{ratio:.1f}x (<= {FLOOR_RATIO:.0f}x)"
                    + (f"; / floor with the Parquet write: {full.seconds / write.seconds:.1f}x" if write else ""))
    return lines


def plot(outcomes: list[Outcome], path: Path) -> None:
    """Time and peak memory against rows, log-log; a scenario that stopped is a cross where it stopped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows_at = {o.scale: o.rows for o in outcomes if o.scenario == "duckdb scan" and o.finished}
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for scenario, style in (("duckdb scan", "o:"), ("duckdb scan+write", "s:"), ("pandas baseline", "^-"),
                            ("platform full", "D-")):
        done = [o for o in outcomes if o.scenario == scenario and o.finished]
        stopped = [o for o in outcomes if o.scenario == scenario and not o.finished and o.scale in rows_at]
        for axis, value in ((left, "seconds"), (right, "peak_rss_mb")):
            line, = axis.plot([o.rows for o in done], [getattr(o, value) for o in done], style, label=scenario)
            if stopped:
                axis.plot([rows_at[o.scale] for o in stopped], [getattr(o, value) for o in stopped], "x",
                          color=line.get_color(), markersize=12, label=f"{scenario}: did not finish")
    for axis, label in ((left, "seconds"), (right, "peak memory (MB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("sales rows of the full history")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    left.set_title("Full history: time")
    right.set_title("Full history: peak memory (RSS, children included)")
    left.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16, 32], help="multiples of the stores")
    parser.add_argument("--smoke", action="store_true", help="tiny data (12 stores, 60 days): checks the harness")
    machine_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    parser.add_argument("--memory-cap-gb", type=float, default=min(20.0, round(0.85 * machine_gib, 1)),
                        help="each child's memory cap, GiB (below the machine's, so a scenario fails alone; "
                             "default 20, at most 85%% of the machine)")
    parser.add_argument("--time-cap", type=float, default=1800, help="each child's time cap, seconds")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "scale.png", help="where the PNG goes")
    args = parser.parse_args(argv)

    from platform_assets.sample_data.generator import N_STORES
    from platform_assets.settings import Settings

    days, n_stores = (60, 12) if args.smoke else (None, N_STORES)
    limit_mb = Settings.from_env().memory_limit_bytes / 2**20
    memory_bytes = int(args.memory_cap_gb * GiB)
    probe = MemoryCap(memory_bytes)
    probe.remove()
    print(f"each child capped at {args.memory_cap_gb:.1f} GiB (by {probe.kind}) and {args.time_cap:.0f} s; "
          f"the platform's memory limit (PLATFORM_MEMORY_LIMIT): {limit_mb:,.0f} MB", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        outcomes = [o for scale in args.scales
                    for o in bench_scale(scale, Path(tmp), days, n_stores, memory_bytes, args.time_cap)]
    report = ["", *table(outcomes), "", *day_split(outcomes), "", *goals(outcomes, limit_mb)]
    print("\n".join(report))
    plot(outcomes, args.plot)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
