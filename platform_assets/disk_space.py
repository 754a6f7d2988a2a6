"""Disk space for a load: checked before anything is written, and one plain message when it runs out anyway.

A load writes the file's archive copy and its Parquet data (plus a little catalog).
It asks for that space first, per file system, so a full disk usually stops it
before any byte is written. Another process can still take the space meanwhile;
the failure is then reported the same way, and the load cleans up what it wrote
(the files DuckDB was writing are orphans, which lake maintenance deletes).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import dagster as dg

# what a commit may add to a SQLite catalog (its rows, its -wal and -shm files)
HEADROOM_BYTES = 1 << 20


class OutOfSpace(dg.Failure):
    """A file system lacks the space a write needs; the description names it and the bytes."""


def require(needs: dict[Path, int], what: str) -> None:
    """Fail with ``OutOfSpace`` unless every file system has what ``what`` needs on it (paths may not exist yet)."""
    short = shortage(needs)
    if short is not None:
        raise out_of_space(*short, what)


def shortage(needs: dict[Path, int]) -> tuple[Path, int] | None:
    """(a path, the bytes needed on its file system) for the first file system with less free, or None."""
    by_device: dict[int, tuple[Path, int]] = {}
    for path, needed in needs.items():
        device = os.stat(_existing(path)).st_dev
        first, total = by_device.get(device, (path, 0))
        by_device[device] = (first, total + needed)
    return next(((path, needed) for path, needed in by_device.values() if free(path) < needed), None)


def out_of_space(path: Path, needed: int, what: str, cause: BaseException | None = None) -> OutOfSpace:
    failed = f" ({str(cause).splitlines()[0]})" if cause is not None else ""
    return OutOfSpace(description=(
        f"not enough disk space for {what}: it needs about {needed:,} bytes on the file system of {path} and "
        f"{free(path):,} are free{failed}. Nothing of it was kept; free some space and load it again (the landing "
        "sensor tries again by itself)."))


def is_out_of_space(error: BaseException) -> bool:
    """The error is a full disk, whichever layer (the OS, DuckDB, SQLite) reported it."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return any(text in str(error) for text in ("No space left on device", "database or disk is full"))


def free(path: Path) -> int:
    return shutil.disk_usage(_existing(path)).free


def _existing(path: Path) -> Path:
    """The path, or its nearest ancestor that exists (what will hold it once it is created)."""
    path = Path(path).absolute()
    while not path.exists():
        path = path.parent
    return path
