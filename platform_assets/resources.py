"""The resources assets use: the lake (``warehouse/``), the landing zone (over ``storage.py``) and the model store."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from platform_assets.excerpts import excerpt
from platform_assets.settings import Settings
from platform_assets.storage import Entry, Place
from platform_assets.warehouse.lake import Warehouse

__all__ = ["LandingZone", "ModelStore", "Warehouse", "landing_outcome"]

# Names of quarantined entries stay this short, so ``<name>.<n>.reason.txt`` fits the usual 255-byte limit.
MAX_NAME_BYTES = 200
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ ()+,=@-]*")
ARCHIVE_HASH_CHARS = 12


class LandingZone(dg.ConfigurableResource):
    """Where upstream drops files (landing), with the archive and the quarantine beside it.

    Each is a folder (by default ``landing/``, ``archive/`` and ``quarantine/`` in the data
    directory) or an object-store prefix, by URL (``storage.py``). Everything in landing
    comes from outside: any name, any kind of entry. A file is loaded from landing (or from
    its archived version when a partition is re-materialized); every landed version is
    copied into ``archive/<name>/`` before its rows commit and is never overwritten. An entry
    that cannot be loaded is quarantined under a safe name with a ``<name>.reason.txt``,
    never overwriting an earlier one.
    """

    data_dir: str = ""
    landing_url: str = ""
    archive_url: str = ""
    quarantine_url: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> LandingZone:
        return cls(data_dir=str(settings.data_dir), landing_url=settings.landing_url,
                   archive_url=settings.archive_url, quarantine_url=settings.quarantine_url)

    @property
    def landing(self) -> Place:
        return Place(self.landing_url or os.path.join(self.data_dir, "landing"))

    @property
    def archive(self) -> Place:
        return Place(self.archive_url or os.path.join(self.data_dir, "archive"))

    @property
    def quarantine(self) -> Place:
        return Place(self.quarantine_url or os.path.join(self.data_dir, "quarantine"))

    def entries(self) -> list[Entry]:
        """Everything waiting in landing (files or not), by name; hidden entries are still being written."""
        return sorted((e for e in self.landing.entries() if not e.name.startswith(".")), key=lambda e: e.name)

    def landed(self, name: str) -> Entry | None:
        """The regular file of that name waiting in landing, if there is one."""
        entry = self.landing.entry(name)
        return entry if entry is not None and entry.kind == "file" else None

    def locate(self, name: str, loaded_hash: str | None = None) -> Entry:
        """The file to load: the one in landing, else the archived copy of the version loaded before."""
        landed = self.landed(name)
        if landed is not None:
            return landed
        archived = self.archived(name, loaded_hash) if loaded_hash else None
        if archived is not None:
            return archived
        if self.quarantine.exists(f"{name}.reason.txt"):
            reason = self.quarantine.read_text(f"{name}.reason.txt").strip()
            raise FileNotFoundError(f"{name} was quarantined: {reason}")
        raise FileNotFoundError(f"{name} is neither in {self.landing} nor archived in {self.archive.url_of(name)}")

    def drop(self, source: Path) -> Entry:
        """Put a copy of ``source`` into landing the way a careful upstream does: whole or not at all, so the
        sensor never sees half of it. A folder's copy is dated back by the quiet period, so it is taken at once."""
        source = Path(source).resolve()  # a link given on the command line: the file it names
        if not source.is_file():
            raise FileNotFoundError(errno.ENOENT, "not a regular file", str(source))
        settled = datetime.now(UTC).timestamp() - Settings.from_env().landing_quiet_seconds
        self.landing.copy_whole(Place(str(source.parent)).entry(source.name), source.name, modified=settled)
        return self.landing.entry(source.name)

    def archived(self, name: str, digest: str) -> Entry | None:
        """The newest archived copy of this content of ``name``, if any."""
        suffix = f"-{digest[:ARCHIVE_HASH_CHARS]}{Path(name).suffix}"
        copies = sorted((e for e in self.archive.entries(name) if e.name.endswith(suffix)), key=lambda e: e.name)
        return copies[-1] if copies else None

    def archive_copy(self, entry: Entry, digest: str, landed_at: datetime) -> tuple[Entry, bool]:
        """Keep this landing of ``entry`` in the archive before its rows commit: one copy per landing, never
        overwritten.

        Returns the copy and whether this call made it. Idempotent: a retried load of the
        same landing finds its copy. A copy cut short (a full disk) leaves nothing behind.
        """
        if entry.is_in(self.archive):  # re-materialized from its archived copy
            return entry, False
        key = f"{entry.name}/{landed_at.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}-{digest[:ARCHIVE_HASH_CHARS]}" \
              f"{Path(entry.name).suffix}"
        existing = self.archive.entry(key)
        if existing is not None and existing.size == entry.size:
            return existing, False
        try:
            self.archive.copy_whole(entry, key)
        except BaseException:
            self.archive.remove_folder_if_empty(entry.name)
            raise
        return self.archive.entry(key), True

    def discard_archive_copy(self, copy: Entry) -> None:
        """Remove the copy of a landing that never loaded (and its folder, if that leaves it empty)."""
        self.archive.remove(copy)
        self.archive.remove_folder_if_empty(copy.key.rsplit("/", 1)[0])

    def move_to_quarantine(self, entry: Entry, reason: str) -> str:
        """Move any entry (file, link, folder, pipe) into the quarantine under a safe, unused name; return it.

        The reason is written first, so a quarantined entry never lacks one; it names the
        original name when the entry had to be renamed. It quotes the entry in bounded excerpts only.
        """
        reason = excerpt(reason)
        safe = safe_name(entry.name)
        target = safe
        for n in itertools.count(2):
            if not self.quarantine.exists(target) and not self.quarantine.exists(f"{target}.reason.txt"):
                break
            target = f"{safe}.{n}"
        if target != entry.name:
            reason += f"\n(landed as {printable(entry.name)!r}, quarantined as {target})"
        self.quarantine.write_whole(f"{target}.reason.txt", (reason + "\n").encode())
        try:
            self.quarantine.move_here(entry, target)
        except BaseException:
            self.quarantine.remove(Entry(self.quarantine, f"{target}.reason.txt"))  # no reason without its entry
            raise
        return target


QUARANTINED = "quarantined"
STUCK = "stuck in landing"
OUTCOME_KEY = "landing_outcome"  # the observation's metadata entry naming the outcome


def landing_outcome(asset_key: dg.AssetKey, outcome: str, file: str, reason: str,
                    partition: str | None = None) -> dg.AssetObservation:
    """A file's trouble (``QUARANTINED``, ``STUCK``) recorded on the raw asset it was meant for.

    Whoever decides it (the landing sensor, a raw load) reports it the same way, so it shows
    on the asset's page in the UI and reaches the alerts through Dagster's event log.
    """
    reason = excerpt(reason)
    return dg.AssetObservation(
        asset_key=asset_key, partition=partition, description=f"{file} {outcome}: {reason}",
        metadata={OUTCOME_KEY: outcome, "file": file, "reason": reason},
    )


class ModelStore(dg.ConfigurableResource):
    """Where trained model artifacts are kept (``data/models/`` by default)."""

    models_dir: str

    @property
    def path(self) -> Path:
        return Path(self.models_dir)


def printable(name: str) -> str:
    """A file name as text that can be logged and stored: bytes that are not UTF-8 become escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def safe_name(name: str) -> str:
    """``name`` if it is plain and short enough for ``<name>.reason.txt``, else a readable stem and its hash."""
    if printable(name) == name and len(os.fsencode(name)) <= MAX_NAME_BYTES and SAFE_NAME.fullmatch(name):
        return name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", printable(name))[:64].lstrip(".") or "entry"
    return f"{stem}~{hashlib.sha256(os.fsencode(name)).hexdigest()[:12]}"
