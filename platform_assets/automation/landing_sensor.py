"""Watch the landing folder: everything in it gets a decided, visible outcome, one entry at a time.

Each entry belongs to the one landed dataset whose file-name pattern it matches
(``datasets/``): a file of a dataset with one partition per file becomes a dynamic
partition of its raw asset named after the file; a file that replaces its table
re-materializes that asset. Per entry, in name order:

- not a regular file (a link, folder or pipe), a name that is not UTF-8, or a name
  no dataset takes (or one with an impossible part: a 13th month, a range that ends
  before it starts): quarantined with the reason, under a safe name when it needs one;
- a file of a dataset that ``loads_after`` others: left alone until they have loaded;
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

A tick that starts the load of a single file of a dataset with layers built on it,
while no other load or rebuild is in flight, carries it through those layers in the
same run (blocked there by the raw checks like anywhere else); a burst loads raw only
and ``downstream_automation`` rebuilds once for all of it.

An error on one entry is logged and the tick goes on with the next; a landing zone
that cannot be listed (an object store that is down) skips the tick with the reason,
keeping the cursor. The sensor never opens the warehouse: what is loaded comes from
Dagster's materializations.
"""

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG, WILL_RETRY_TAG

from platform_assets.assets.raw import FILE_TAG, LANDED_AT_TAG
from platform_assets.datasets import Datasets
from platform_assets.excerpts import NAME_CHARS, excerpt
from platform_assets.resources import QUARANTINED, STUCK, LandingZone, landing_outcome, printable
from platform_assets.settings import Settings
from platform_assets.storage import Entry

MAX_RETRY_SECONDS = 3600
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
    unsettled: dict[str, list] = field(default_factory=dict)  # name -> [size, modified, first seen]

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "LandingState":
        data = json.loads(cursor or "{}")
        if data and "content" not in data:  # cursor of the previous layout: {name: sha}
            data = {"content": data}
        pending = {name: Pending(**p) for name, p in data.pop("pending", {}).items()}
        return cls(**data, pending=pending)

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def landing_sensor(datasets: Datasets, layers: dict[dg.AssetKey, list[dg.AssetKey]]) -> dg.SensorDefinition:
    """The sensor over every landed dataset; ``layers``: what a lone file of a dataset is carried through."""
    writers = {d.asset_key for d in datasets.all} | {key for keys in layers.values() for key in keys}

    @dg.sensor(
        name="landing_sensor",
        description="Starts a raw load for every new or changed file in the landing folder; retries failed loads.",
        minimum_interval_seconds=SETTINGS.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=sorted(writers, key=lambda k: k.to_user_string()),
    )
    def watch_landing(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult | dg.SkipReason:
        try:
            entries = landing.entries()
        except Exception as error:  # an object store that does not answer: nothing decided, nothing forgotten
            reason = (f"cannot list the landing zone {landing.landing} ({type(error).__name__}: "
                      f"{excerpt(str(error))}); trying again next tick")
            context.log.error(reason)
            return dg.SkipReason(reason)
        state = LandingState.from_cursor(context.cursor)
        tick = _Tick(context, landing, state, datasets, Settings.from_env(), time.time())
        for entry in entries:
            try:
                tick.handle(entry)
            except FileNotFoundError:
                context.log.info(f"{printable(entry.name)} disappeared from landing/ while being looked at")
            except Exception as error:  # one odd entry never stops the others
                context.log.warning(f"{printable(entry.name)}: not handled this tick "
                                    f"({type(error).__name__}: {excerpt(str(error))})")
        present = {e.name for e in entries}
        state.pending = {n: p for n, p in state.pending.items() if n in present}
        state.unsettled = tick.unsettled
        return dg.SensorResult(
            run_requests=_carried_through(context, tick.runs, layers, writers),
            dynamic_partitions_requests=[dg.DynamicPartitionsDefinition(name=name).build_add_request(names)
                                         for name, names in sorted(tick.new_partitions.items())],
            asset_events=tick.outcomes,
            cursor=state.to_cursor(),
        )

    return watch_landing


class _Tick:
    """One evaluation of the sensor: decides each entry, collects the runs to start."""

    def __init__(self, context, landing: LandingZone, state: LandingState, datasets: Datasets, settings: Settings,
                 now: float):
        self.context, self.landing, self.state, self.settings, self.now = context, landing, state, settings, now
        self.datasets = datasets
        self.log = context.log
        self.runs: list[dg.RunRequest] = []
        self.new_partitions: dict[str, list[str]] = {}  # partitions definition -> names to add
        self.outcomes: list[dg.AssetObservation] = []  # quarantined and stuck files, for the UI and the alerts
        self.unsettled: dict[str, list] = {}
        self._loaded: dict[dg.AssetKey, bool] = {}

    def has_loaded(self, key: dg.AssetKey) -> bool:
        """Looked up once a file needs it: an idle tick (empty landing/) queries nothing."""
        if key not in self._loaded:
            self._loaded[key] = self.context.instance.get_latest_materialization_event(key) is not None
        return self._loaded[key]

    def handle(self, entry: Entry) -> None:
        name = entry.name
        problem = _problem(entry, self.datasets)
        if problem is not None:
            self.quarantine(entry, f"{printable(name)}: {problem}")
            return
        if not self.settled(entry):
            self.log.info(f"{name} is still being written (changed in the last "
                          f"{self.settings.landing_quiet_seconds:g}s); waiting")
            return
        dataset = self.datasets.for_name(name)
        waiting = [key for key in dataset.loads_after if not self.has_loaded(dg.AssetKey.from_user_string(key))]
        if waiting:
            self.log.info(f"{name} waits until {', '.join(waiting)} has been loaded (its loads_after)")
            return
        digest = entry.sha256()
        landed_before = self.state.content.get(name) == digest
        if landed_before and self.loaded_content(name) == digest:
            self.drop_duplicate(entry)
        elif landed_before and name in self.state.pending:
            self.follow_up(entry, self.state.pending[name])
        else:
            twin = next((n for n, h in self.state.content.items() if h == digest and n != name), None)
            if twin is not None:
                self.quarantine(entry, f"{name}: same content as {twin}, which already landed; not loaded twice")
            else:
                self.request(name, digest)

    def settled(self, entry: Entry) -> bool:
        """Unchanged for the quiet period: by its modification time, or by what earlier ticks saw.

        An object in a bucket is whole once it is listed (a put is atomic); the same rule
        then only means that a key rewritten in quick succession is taken at its last version.
        """
        signature = [entry.size, entry.modified]
        seen = self.state.unsettled.get(entry.name)
        first_seen = seen[2] if seen and seen[:2] == signature else self.now
        quiet = self.settings.landing_quiet_seconds
        if self.now - entry.modified >= quiet or self.now - first_seen >= quiet:
            return True
        self.unsettled[entry.name] = [*signature, first_seen]
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
        dataset = self.datasets.for_name(name)
        if not dataset.per_file:
            self.runs.append(dg.RunRequest(run_key=pending.run_key, asset_selection=[dataset.asset_key],
                                           tags={**tags, FILE_TAG: name}))
            return
        partitions = dataset.partitions_def.name
        if not self.context.instance.has_dynamic_partition(partitions, name) and name not in self.new_partitions.get(
                partitions, []):
            self.new_partitions.setdefault(partitions, []).append(name)
        self.runs.append(dg.RunRequest(run_key=pending.run_key, partition_key=name,
                                       asset_selection=[dataset.asset_key], tags=tags))

    def follow_up(self, entry: Entry, pending: Pending) -> None:
        """The file of a requested load is still here: wait for its run, or try again after it failed."""
        name = entry.name
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

    def drop_duplicate(self, entry: Entry) -> None:
        if not entry.place.remove_if_unchanged(entry):
            self.log.info(f"{entry.name} changed while it was looked at; looked at again next tick")
            return
        self.log.info(f"{entry.name} landed again with the content already loaded; removed from landing "
                      f"(that version is in {self.landing.archive.url_of(entry.name)})")

    def quarantine(self, entry: Entry, reason: str) -> None:
        target = self.landing.move_to_quarantine(entry, reason)
        self.log.warning(f"quarantined as {target}: {reason}")
        self.record(QUARANTINED, printable(entry.name), reason)

    def record(self, outcome: str, name: str, reason: str) -> None:
        """An observation on the raw asset the file was meant for (a name no dataset takes: the first dataset's)."""
        dataset = self.datasets.for_name(name) or self.datasets.all[0]
        partition = name if dataset.per_file and self.context.instance.has_dynamic_partition(
            dataset.partitions_def.name, name) else None
        self.outcomes.append(landing_outcome(dataset.asset_key, outcome, name, reason, partition=partition))

    def loaded_content(self, name: str) -> str | None:
        """The content hash of the newest materialization of ``name``: what is loaded under it."""
        dataset = self.datasets.for_name(name)
        records = self.context.instance.fetch_materializations(dg.AssetRecordsFilter(
            asset_key=dataset.asset_key, asset_partitions=[name] if dataset.per_file else None), limit=1).records
        if not records or (not dataset.per_file and _file_of(records[0]) != name):
            return None
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


def _file_of(record) -> str | None:
    entry = record.asset_materialization.metadata.get("source_file")
    return entry.value if entry else None


def _carried_through(context, runs: list[dg.RunRequest], layers: dict[dg.AssetKey, list[dg.AssetKey]],
                     writers: set[dg.AssetKey]) -> list[dg.RunRequest]:
    """A lone file with layers built on it and nothing else in flight: one run takes it through them.

    That saves the automation sensor's interval and a second run's start (measured by
    ``make bench-latency``); the raw checks still block the layers inside the run.
    A burst, or a file landing while other loads or rebuilds are queued or running, loads raw
    only, and ``downstream_automation`` folds all of them into one downstream run.
    """
    if len(runs) != 1 or runs[0].partition_key is None or not layers.get(runs[0].asset_selection[0]):
        return runs
    if being_built(context.instance, writers):
        return runs
    (run,) = runs
    return [dg.RunRequest(run_key=run.run_key, partition_key=run.partition_key, tags=run.tags,
                          asset_selection=[*run.asset_selection, *layers[run.asset_selection[0]]])]


def being_built(instance: dg.DagsterInstance, keys: set[dg.AssetKey]) -> bool:
    """A queued or running run builds one of ``keys`` (a run of every asset counts)."""
    return any(run.asset_selection is None or run.asset_selection & keys
               for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=50))


def _problem(entry: Entry, datasets: Datasets) -> str | None:
    """Why an entry of landing cannot be loaded, or None for a regular file with a valid name."""
    if entry.kind == "link":
        target = excerpt(printable(entry.target or ""), line_chars=NAME_CHARS)
        return f"a symbolic link (to {target}), not a file; only regular files are loaded"
    if entry.kind != "file":
        what = "a folder (in a bucket: keys under a shared prefix)" if entry.kind == "folder" and not \
            entry.place.is_local else f"a {entry.kind}"
        return f"{what}, not a file; only regular files are loaded"
    if printable(entry.name) != entry.name:
        return "its name is not valid UTF-8"
    dataset = datasets.for_name(entry.name)
    if dataset is None:
        return f"not a file the platform knows; expected {datasets.expected_names}"
    return dataset.pattern.problem(entry.name)
