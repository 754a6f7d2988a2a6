"""Watch the landing folder: everything in it gets a decided, visible outcome, one entry at a time.

Each sales file becomes a dynamic partition of ``raw/sales`` named after the
file; the store master re-materializes ``raw/stores``. Per entry, in name order:

- not a regular file (a link, folder or pipe), a name that is not UTF-8, or a name
  that is not ``store.csv`` / ``sales_<day>[_<day>].csv`` with real calendar days:
  quarantined with the reason, under a safe name when it needs one;
- still changing (written in place): left alone until its size and modification time
  have been still for ``PLATFORM_LANDING_QUIET_SECONDS``; hidden names (``.name.tmp``)
  are files being written under a temporary name and are not looked at;
- content that differs from what was last landed under its name (a new file, a
  correction, or a revert to content loaded once before): a new landing, loaded by a
  run whose key is unique to this landing, tagged with when it landed;
- the same content as what is loaded under its name: a duplicate, removed from landing
  (the loaded version is in archive/);
- the same content as another name's: quarantined as a duplicate;
- still in landing after its load failed: tried again after a back-off that doubles
  (``PLATFORM_LANDING_RETRY_SECONDS``), and reported once when it has waited longer
  than ``PLATFORM_LANDING_STUCK_SECONDS``.

A tick that starts the load of a single sales file while no other load or rebuild is
in flight carries it through cleaned and features in the same run (blocked there by the
raw checks like anywhere else); a burst loads raw only and ``downstream_automation``
rebuilds once for all of it.

An error on one entry is logged and the tick goes on with the next. The sensor
never opens the warehouse: what is loaded comes from Dagster's materializations.
"""

import json
import stat
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG, WILL_RETRY_TAG

from platform_assets import rossmann
from platform_assets.assets.cleaned import cleaned_sales
from platform_assets.assets.features import sales_features
from platform_assets.assets.raw import LANDED_AT_TAG, raw_sales, raw_stores, sales_files
from platform_assets.excerpts import NAME_CHARS, excerpt
from platform_assets.resources import QUARANTINED, STUCK, LandingZone, content_hash, landing_outcome, printable
from platform_assets.settings import Settings

MAX_RETRY_SECONDS = 3600
LAKE_WRITERS = {raw_stores.key, raw_sales.key, cleaned_sales.key, sales_features.key}
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]
SETTINGS = Settings.from_env()


@dataclass
class Pending:
    """A landing whose load was requested and whose file is still in landing/."""

    sha: str
    landed_at: float
    run_key: str
    requested_at: float
    attempt: int = 1
    retry_at: float | None = None
    reported_stuck: bool = False


@dataclass
class LandingState:
    """The sensor's cursor: what each name holds, what waits for its run, what is still being written."""

    landings: int = 0
    content: dict[str, str] = field(default_factory=dict)  # name -> sha256 of its last landing
    pending: dict[str, Pending] = field(default_factory=dict)
    unsettled: dict[str, list] = field(default_factory=dict)  # name -> [size, mtime_ns, first seen]

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "LandingState":
        data = json.loads(cursor or "{}")
        if data and "content" not in data:  # cursor of the previous layout: {name: sha}
            data = {"content": data}
        pending = {name: Pending(**p) for name, p in data.pop("pending", {}).items()}
        return cls(**data, pending=pending)

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dg.sensor(
    name="landing_sensor",
    description="Starts a raw load for every new or changed file in the landing folder; retries failed loads.",
    minimum_interval_seconds=SETTINGS.sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=[raw_sales, raw_stores, cleaned_sales, sales_features],
)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    state = LandingState.from_cursor(context.cursor)
    tick = _Tick(context, landing, state, Settings.from_env(), time.time())
    entries = landing.entries()
    for path in entries:
        try:
            tick.handle(path)
        except FileNotFoundError:
            context.log.info(f"{printable(path.name)} disappeared from landing/ while being looked at")
        except Exception as error:  # one odd entry never stops the others
            context.log.warning(f"{printable(path.name)}: not handled this tick "
                                f"({type(error).__name__}: {excerpt(str(error))})")
    present = {p.name for p in entries}
    state.pending = {n: p for n, p in state.pending.items() if n in present}
    state.unsettled = tick.unsettled
    return dg.SensorResult(
        run_requests=_carried_through(context, tick.runs),
        dynamic_partitions_requests=[sales_files.build_add_request(tick.new_partitions)] if tick.new_partitions else [],
        asset_events=tick.outcomes,
        cursor=state.to_cursor(),
    )


class _Tick:
    """One evaluation of the sensor: decides each entry, collects the runs to start."""

    def __init__(self, context, landing: LandingZone, state: LandingState, settings: Settings, now: float):
        self.context, self.landing, self.state, self.settings, self.now = context, landing, state, settings, now
        self.log = context.log
        self.runs: list[dg.RunRequest] = []
        self.new_partitions: list[str] = []
        self.outcomes: list[dg.AssetObservation] = []  # quarantined and stuck files, for the UI and the alerts
        self.unsettled: dict[str, list] = {}

    @cached_property
    def stores_loaded(self) -> bool:
        """Looked up once a sales file needs it: an idle tick (empty landing/) queries nothing."""
        return self.context.instance.get_latest_materialization_event(raw_stores.key) is not None

    def handle(self, path: Path) -> None:
        name = path.name
        problem = _problem(path)
        if problem is not None:
            self.quarantine(path, f"{printable(name)}: {problem}")
            return
        if not self.settled(path):
            self.log.info(f"{name} is still being written (changed in the last "
                          f"{self.settings.landing_quiet_seconds:g}s); waiting")
            return
        if name != rossmann.STORES_FILE and not self.stores_loaded:
            self.log.info(f"{name} waits until the store master ({rossmann.STORES_FILE}) has been loaded")
            return
        digest = content_hash(path)
        landed_before = self.state.content.get(name) == digest
        if landed_before and self.loaded_content(name) == digest:
            self.drop_duplicate(path)
        elif landed_before and name in self.state.pending:
            self.follow_up(path, self.state.pending[name])
        else:
            twin = next((n for n, h in self.state.content.items() if h == digest and n != name), None)
            if twin is not None:
                self.quarantine(path, f"{name}: same content as {twin}, which already landed; not loaded twice")
            else:
                self.request(name, digest)

    def settled(self, path: Path) -> bool:
        """Unchanged for the quiet period: by its modification time, or by what earlier ticks saw."""
        info = path.stat()
        signature = [info.st_size, info.st_mtime_ns]
        seen = self.state.unsettled.get(path.name)
        first_seen = seen[2] if seen and seen[:2] == signature else self.now
        quiet = self.settings.landing_quiet_seconds
        if self.now - info.st_mtime >= quiet or self.now - first_seen >= quiet:
            return True
        self.unsettled[path.name] = [*signature, first_seen]
        return False

    def request(self, name: str, digest: str, pending: Pending | None = None) -> None:
        """A run for a new landing of ``name``, or (``pending``) the next attempt of one that failed."""
        if pending is None:
            self.state.landings += 1
            pending = Pending(sha=digest, landed_at=self.now, run_key=f"{name}@{digest[:16]}#{self.state.landings}",
                              requested_at=self.now)
            self.log.info(f"requesting a load of {name} (sha256 {digest[:12]}, landing {self.state.landings})")
        else:
            pending.attempt += 1
            pending.run_key = f"{pending.run_key.split('~')[0]}~{pending.attempt}"
            pending.requested_at, pending.retry_at = self.now, None
            self.log.warning(f"retrying the load of {name} (attempt {pending.attempt})")
        self.state.content[name] = digest
        self.state.pending[name] = pending
        tags = {LANDED_AT_TAG: datetime.fromtimestamp(pending.landed_at, UTC).isoformat()}
        if name == rossmann.STORES_FILE:
            self.runs.append(dg.RunRequest(run_key=pending.run_key, asset_selection=[raw_stores.key], tags=tags))
            return
        if not self.context.instance.has_dynamic_partition(sales_files.name, name) and name not in self.new_partitions:
            self.new_partitions.append(name)
        self.runs.append(dg.RunRequest(run_key=pending.run_key, partition_key=name,
                                       asset_selection=[raw_sales.key], tags=tags))

    def follow_up(self, path: Path, pending: Pending) -> None:
        """The file of a requested load is still here: wait for its run, or try again after it failed."""
        name = path.name
        run = self.latest_run(pending.run_key)
        started = run is not None or self.now - pending.requested_at < self.settings.landing_retry_seconds
        waiting_for_run = started and (run is None or not run.is_finished or run.tags.get(WILL_RETRY_TAG) == "true")
        if waiting_for_run:
            self.report_if_stuck(name, pending, "its load has not finished" if run else "its load has not started")
        elif pending.retry_at is None:
            delay = min(self.settings.landing_retry_seconds * 2 ** (pending.attempt - 1), MAX_RETRY_SECONDS)
            ended = self.ended_at(run) if run else self.now
            pending.retry_at = ended + delay
            outcome = f"its load (run {run.run_id}) ended {run.status.value}" if run else "its load never started"
            self.log.warning(f"{name} is still in landing/: {outcome}; trying again after a {delay:.0f}s back-off "
                             f"(attempt {pending.attempt + 1})")
        if pending.retry_at is not None and self.now >= pending.retry_at:
            self.request(name, pending.sha, pending)
        elif not waiting_for_run:
            self.report_if_stuck(name, pending, f"its load failed {pending.attempt} time(s)")

    def report_if_stuck(self, name: str, pending: Pending, why: str) -> None:
        waited = self.now - pending.landed_at
        if waited > self.settings.landing_stuck_seconds and not pending.reported_stuck:
            pending.reported_stuck = True
            self.log.error(f"STUCK: {name} has waited in landing/ for {waited / 60:.1f} min: {why}")
            self.record(STUCK, name, f"waited {waited / 60:.1f} min: {why}")

    def drop_duplicate(self, path: Path) -> None:
        path.unlink()
        self.log.info(f"{path.name} landed again with the content already loaded; removed from landing "
                      f"(that version is in {self.landing.archive / path.name})")

    def quarantine(self, path: Path, reason: str) -> None:
        target = self.landing.move_to_quarantine(path, reason)
        self.log.warning(f"quarantined as {target.name}: {reason}")
        self.record(QUARANTINED, printable(path.name), reason)

    def record(self, outcome: str, name: str, reason: str) -> None:
        """An observation on the raw asset the file was meant for (a bad name counts as a sales file)."""
        stores = name == rossmann.STORES_FILE
        partition = None if stores or not self.context.instance.has_dynamic_partition(sales_files.name, name) else name
        self.outcomes.append(landing_outcome(raw_stores.key if stores else raw_sales.key, outcome, name, reason,
                                             partition=partition))

    def loaded_content(self, name: str) -> str | None:
        """The content hash of the newest materialization of ``name``: what is loaded under it."""
        key = raw_stores.key if name == rossmann.STORES_FILE else raw_sales.key
        partitions = None if name == rossmann.STORES_FILE else [name]
        records = self.context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=1).records
        if not records:
            return None
        entry = records[0].asset_materialization.metadata.get("content_hash")
        return entry.value if entry else None

    def latest_run(self, run_key: str):
        runs = self.context.instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
        return runs[0] if runs else None

    def ended_at(self, run) -> float:
        record = self.context.instance.get_run_record_by_id(run.run_id)
        return record.end_time if record and record.end_time else self.now


def _carried_through(context, runs: list[dg.RunRequest]) -> list[dg.RunRequest]:
    """A lone sales file with nothing else in flight: one run takes it through raw, cleaned and features.

    That saves the automation sensor's interval and a second run's start (measured by
    ``make bench-latency``); the raw checks still block cleaned and features inside the run.
    A burst, or a file landing while other loads or rebuilds are queued or running, loads raw
    only, and ``downstream_automation`` folds all of them into one downstream run.
    """
    if len(runs) != 1 or runs[0].partition_key is None:
        return runs
    in_flight = context.instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=50)
    if any(run.asset_selection is None or run.asset_selection & LAKE_WRITERS for run in in_flight):
        return runs
    (run,) = runs
    return [dg.RunRequest(run_key=run.run_key, partition_key=run.partition_key, tags=run.tags,
                          asset_selection=[*run.asset_selection, cleaned_sales.key, sales_features.key])]


def _problem(path: Path) -> str | None:
    """Why an entry of landing/ cannot be loaded, or None for a regular file with a valid name."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        target = excerpt(printable(str(path.readlink())), line_chars=NAME_CHARS)
        return f"a symbolic link (to {target}), not a file; only regular files are loaded"
    if not stat.S_ISREG(mode):
        kind = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket"}.get(
            stat.S_IFMT(mode), "a device")
        return f"{kind}, not a file; only regular files are loaded"
    if printable(path.name) != path.name:
        return "its name is not valid UTF-8"
    return rossmann.name_problem(path.name)
