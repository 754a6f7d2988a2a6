"""The resources assets use: the lake (``warehouse/``), the landing zone and the model store."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from platform_assets.excerpts import excerpt
from platform_assets.settings import Settings
from platform_assets.warehouse.lake import Warehouse

__all__ = ["LandingZone", "ModelStore", "Warehouse", "landing_outcome"]

# Names of quarantined entries stay this short, so ``<name>.<n>.reason.txt`` fits the usual 255-byte limit.
MAX_NAME_BYTES = 200
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ ()+,=@-]*")
ARCHIVE_HASH_CHARS = 12


class LandingZone(dg.ConfigurableResource):
    """The folder upstream drops files into, with archive/ and quarantine/ beside it.

    Everything in landing/ comes from outside: any name, any kind of entry. A file
    is loaded from landing/ (or from its archived version when a partition is
    re-materialized); every landed version is copied into ``archive/<name>/`` before
    its rows commit and is never overwritten. An entry that cannot be loaded is
    quarantined under a safe name with a ``<name>.reason.txt``, never overwriting
    an earlier one.
    """

    data_dir: str

    @property
    def landing(self) -> Path:
        return Path(self.data_dir) / "landing"

    @property
    def archive(self) -> Path:
        return Path(self.data_dir) / "archive"

    @property
    def quarantine(self) -> Path:
        return Path(self.data_dir) / "quarantine"

    def entries(self) -> list[Path]:
        """Everything waiting in landing/ (files or not), by name; hidden entries are still being written."""
        if not self.landing.is_dir():
            return []
        return sorted(p for p in self.landing.iterdir() if not p.name.startswith("."))

    def landed(self, name: str) -> Path | None:
        """The regular file of that name waiting in landing/, if there is one."""
        landed = self.landing / name
        return landed if landed.is_file() and not landed.is_symlink() else None

    def locate(self, name: str, loaded_hash: str | None = None) -> Path:
        """The file to load: the one in landing/, else the archived copy of the version loaded before."""
        landed = self.landed(name)
        if landed is not None:
            return landed
        archived = self.archived(name, loaded_hash) if loaded_hash else None
        if archived is not None:
            return archived
        reason = self.quarantine / f"{name}.reason.txt"
        if reason.is_file():
            raise FileNotFoundError(f"{name} was quarantined: {reason.read_text().strip()}")
        raise FileNotFoundError(f"{name} is neither in {self.landing} nor archived in {self.archive / name}")

    def drop(self, source: Path) -> Path:
        """Put a copy of ``source`` into landing/ the way a careful upstream does: under a hidden name, then
        renamed, so the sensor never sees half of it (and, dated back by the quiet period, takes it at once)."""
        if not source.is_file():
            raise FileNotFoundError(errno.ENOENT, "not a regular file", str(source))
        self.landing.mkdir(parents=True, exist_ok=True)
        target, temporary = self.landing / source.name, self.landing / f".{source.name}.tmp"
        shutil.copyfile(source, temporary)
        settled = datetime.now(UTC).timestamp() - Settings.from_env().landing_quiet_seconds
        os.utime(temporary, (settled, settled))
        os.replace(temporary, target)
        return target

    def archived(self, name: str, digest: str) -> Path | None:
        """The newest archived copy of this content of ``name``, if any."""
        copies = sorted((self.archive / name).glob(f"*-{digest[:ARCHIVE_HASH_CHARS]}{Path(name).suffix}"))
        return copies[-1] if copies else None

    def archive_copy(self, path: Path, digest: str, landed_at: datetime) -> tuple[Path, bool]:
        """Keep this landing of ``path`` in archive/ before its rows commit: one copy per landing, never overwritten.

        Returns the copy and whether this call made it. Idempotent: a retried load of the
        same landing finds its copy. A copy cut short (a full disk) leaves nothing behind.
        """
        folder = self.archive / path.name
        target = folder / f"{landed_at.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}-{digest[:ARCHIVE_HASH_CHARS]}{path.suffix}"
        if path.parent == folder:  # re-materialized from its archived copy
            return path, False
        if target.is_file():
            return target, False
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{target.name}.tmp"
        try:
            shutil.copyfile(path, temporary)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            self.discard_archive_copy(target)
            raise
        return target, True

    def discard_archive_copy(self, copy: Path) -> None:
        """Remove the copy of a landing that never loaded (and its folder, if that leaves it empty)."""
        copy.unlink(missing_ok=True)
        try:
            copy.parent.rmdir()
        except OSError:  # other versions of the file are archived there
            pass

    def move_to_quarantine(self, path: Path, reason: str) -> Path:
        """Move any entry (file, link, folder, pipe) into quarantine/ under a safe, unused name.

        The reason is written first, so a quarantined entry never lacks one; it names the
        original name when the entry had to be renamed. It quotes the entry in bounded excerpts only.
        """
        reason = excerpt(reason)
        self.quarantine.mkdir(parents=True, exist_ok=True)
        safe = safe_name(path.name)
        target = self.quarantine / safe
        for n in itertools.count(2):
            if not os.path.lexists(target) and not os.path.lexists(f"{target}.reason.txt"):
                break
            target = self.quarantine / f"{safe}.{n}"
        if target.name != path.name:
            reason += f"\n(landed as {printable(path.name)!r}, quarantined as {target.name})"
        Path(f"{target}.reason.txt").write_text(reason + "\n")
        os.replace(path, target)
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


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes: the identity of a landed file's content."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
