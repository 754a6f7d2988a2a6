"""Folders and buckets as one kind of place: where landing/, archive/ and quarantine/ live.

A place is a URL: a local folder (``/srv/data/landing``) or an object-store prefix
(``s3://landing/``). fsspec gives both the same calls (list, open, copy, remove), and
s3fs is its S3 implementation, with this process's identity from the AWS variables,
as for the lake (``warehouse/object_storage.py``). Where the two differ, this module
decides, so nothing above it has a second code path:

- a folder can hold links, folders, pipes; a bucket holds objects, and a "folder"
  in it is a prefix other keys share;
- a file is made whole in a folder by writing a hidden temporary name and renaming it;
  an object is whole the moment it appears (a put or a server-side copy is atomic), so
  it is written under its name directly;
- a move is a rename in a folder, and a copy then a delete in a bucket.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from platform_assets.warehouse import object_storage

KINDS = {stat.S_IFREG: "file", stat.S_IFLNK: "link", stat.S_IFDIR: "folder", stat.S_IFIFO: "named pipe",
         stat.S_IFSOCK: "socket"}


@dataclass(frozen=True)
class Entry:
    """Something in a place: a file or object, or (in a folder) a link, folder, pipe..."""

    place: Place
    key: str  # its path inside the place, '/'-separated
    kind: str = "file"  # file, link, folder, named pipe, socket, device
    size: int = 0
    modified: float = 0.0  # seconds since the epoch: mtime, or an object's LastModified
    target: str | None = None  # where a link points
    tag: str | None = None  # this version of it: an object's ETag, a file's inode, size and time

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def url(self) -> str:
        return self.place.url_of(self.key)

    def open(self) -> IO[bytes]:
        return self.place.open(self.key)

    def sha256(self) -> str:
        """sha256 of the bytes: the identity of a landed file's content (streamed, never held whole)."""
        with self.open() as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    def is_in(self, place: Place) -> bool:
        return self.place.url == place.url


class Place:
    """A folder or a bucket prefix, by URL."""

    def __init__(self, url: str):
        self.url = url.rstrip("/") if url.rstrip("/") else url
        self.fs, self.root = _filesystem(self.url)
        self.is_local = isinstance(self.fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"Place({self.url!r})"

    def __str__(self) -> str:
        return self.url

    def url_of(self, key: str) -> str:
        return f"{self.url}/{key}"

    def path_of(self, key: str) -> str:
        """The key as the filesystem names it: a local path, or ``bucket/prefix/key``.

        A local key never climbs out of its folder: an object named ``a/../../x`` is only a
        name in a bucket, but would be a path on a disk.
        """
        if self.is_local and any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"{key!r} is not a plain name inside {self.url}")
        return f"{self.root}/{key}"

    def entries(self, under: str = "") -> list[Entry]:
        """What is directly in the place (or in its sub-folder ``under``), unsorted; nothing if it does not exist."""
        folder = self.path_of(under).rstrip("/") if under else self.root
        prefix = f"{under.strip('/')}/" if under else ""
        if self.is_local:
            try:
                names = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError):
                return []
            found = []
            for name in names:
                try:
                    found.append(self._local_entry(prefix + name))
                except FileNotFoundError:  # gone between listing and looking
                    pass
            return found
        try:
            listed = self.fs.ls(folder, detail=True, refresh=True)
        except FileNotFoundError:
            listed = []
        if not listed:  # a misspelt bucket is not an empty landing zone
            bucket = self.root.split("/", 1)[0]
            if not self.fs.exists(bucket):
                raise FileNotFoundError(f"there is no bucket {bucket!r} (or this identity may not see it)")
        return [self._object_entry(prefix + info["name"].rstrip("/").rsplit("/", 1)[-1], info) for info in listed
                if info["name"].rstrip("/") != folder.rstrip("/")]

    def entry(self, key: str) -> Entry | None:
        """The entry of that key, if there is one."""
        try:
            if self.is_local:
                return self._local_entry(key)
            return self._object_entry(key, self.fs.info(self.path_of(key)))
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        """Anything under that key (a dangling link too)."""
        if self.is_local:
            return os.path.lexists(self.path_of(key))
        return self.entry(key) is not None

    def open(self, key: str) -> IO[bytes]:
        """For reading; a local link is refused, never followed (it may have been swapped in since it was listed)."""
        if self.is_local:
            return os.fdopen(os.open(self.path_of(key), os.O_RDONLY | os.O_NOFOLLOW), "rb")
        return io.BufferedReader(self.fs.open(self.path_of(key), "rb"))  # the file API in full (readline's limit)

    def read_text(self, key: str) -> str:
        with self.open(key) as handle:
            return handle.read().decode()

    def write_whole(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` so that nobody ever sees part of it."""
        if not self.is_local:
            self.fs.pipe_file(self.path_of(key), data)
            return
        target = self.path_of(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temporary = _hidden(target)
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, target)
        except BaseException:
            _unlink(temporary)
            raise

    def copy_whole(self, source: Entry, key: str, modified: float | None = None) -> None:
        """Copy ``source`` (from any place) to ``key``, appearing whole; ``modified`` dates a folder's copy back.

        Only calls that take a path as it is (``cp_file``, never ``copy``): fsspec reads
        ``*``, ``?`` and ``[`` in the others as a pattern, and a key may hold any of them.
        """
        if not self.is_local:  # an upload or a copy appears whole when it ends
            target = self.path_of(key)
            if not source.place.is_local and _same_store(source.place.fs, self.fs):
                self.fs.cp_file(source.place.path_of(source.key), target)  # server-side
                return
            with source.open() as handle:
                out = self.fs.open(target, "wb")
                try:
                    shutil.copyfileobj(handle, out, 8 * 2**20)
                except BaseException:
                    out.discard()  # an upload cut short leaves no object behind
                    raise
                out.close()
            return
        target = self.path_of(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temporary = _hidden(target)
        try:
            if source.place.is_local:
                shutil.copyfile(source.place.path_of(source.key), temporary)
            else:
                source.place.fs.get_file(source.place.path_of(source.key), temporary)
            if modified is not None:
                os.utime(temporary, (modified, modified))
            os.replace(temporary, target)
        except BaseException:
            _unlink(temporary)
            raise

    def move_here(self, source: Entry, key: str) -> None:
        """Move any entry (a folder's link, pipe or sub-folder too) to ``key``: a rename, or copies then deletes.

        Across places, exactly what was copied is deleted, and only if it did not change
        meanwhile (what changed stays where it was, for the next look); a copy that fails
        takes back what it had written.
        """
        if self.is_local and source.place.is_local:
            os.makedirs(os.path.dirname(self.path_of(key)), exist_ok=True)
            os.replace(source.place.path_of(source.key), self.path_of(key))
            return
        written: list[str] = []
        copied: list[Entry] = []
        try:
            self._copy_any(source, key, written, copied)
        except BaseException:
            for done in written:
                self.remove(Entry(self, done))
            raise
        for entry in copied:
            entry.place.remove_if_unchanged(entry)
        if source.kind == "folder":
            source.place.remove_folder_if_empty(source.key)

    def _copy_any(self, source: Entry, key: str, written: list[str], copied: list[Entry]) -> None:
        """A file's bytes, a folder's entries one by one; a link or a pipe as a note of what it was, never
        what it reaches (a link in landing/ may point anywhere on the host)."""
        if source.kind == "folder":
            for inner in source.place.entries(source.key):
                name = inner.name if inner.name not in ("", ".", "..") else \
                    f"unsafe-name~{hashlib.sha256(inner.name.encode()).hexdigest()[:12]}"
                self._copy_any(inner, f"{key}/{name}", written, copied)
            return
        if source.kind == "file":
            self.copy_whole(source, key)
        else:
            self.write_whole(key, f"({source.kind}{f' to {source.target}' if source.target else ''})\n".encode())
        written.append(key)
        copied.append(source)

    def remove(self, entry: Entry) -> None:
        """Remove one file (or a folder's link or pipe); one that is already gone is fine."""
        path = self.path_of(entry.key)
        if self.is_local:
            _unlink(path)
            return
        try:
            self.fs.rm_file(path)  # never a pattern (see copy_whole)
        except FileNotFoundError:
            pass

    def remove_if_unchanged(self, entry: Entry) -> bool:
        """Remove the entry unless it changed since it was looked at (a new version landed under its name).

        The check and the delete are two calls: a version landing between them is the one
        race left (S3 has no delete conditional on the content).
        """
        now = self.entry(entry.key)
        if now is not None and (now.kind, now.tag) != (entry.kind, entry.tag):
            return False
        self.remove(entry)
        return True

    def remove_folder_if_empty(self, key: str) -> None:
        """A local folder left empty goes (and its empty sub-folders); a bucket has no empty folders."""
        if self.is_local:
            for folder, _, _ in os.walk(self.path_of(key), topdown=False):  # links are not followed
                try:
                    os.rmdir(folder)
                except OSError:  # not empty, or gone
                    pass

    def _local_entry(self, key: str) -> Entry:
        path = self.path_of(key)
        info = os.lstat(path)
        kind = KINDS.get(stat.S_IFMT(info.st_mode), "device")
        return Entry(self, key, kind, info.st_size, info.st_mtime, target=os.readlink(path) if kind == "link" else None,
                     tag=f"{info.st_ino}-{info.st_size}-{info.st_mtime_ns}")

    def _object_entry(self, key: str, info: dict) -> Entry:
        if info.get("type") == "directory":
            return Entry(self, key, "folder")
        modified = info.get("LastModified")
        return Entry(self, key, "file", int(info.get("size") or 0),
                     modified.timestamp() if isinstance(modified, datetime) else 0.0, tag=info.get("ETag"))


def _filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """fsspec's filesystem for the URL and the URL's path in it; S3 with this process's identity."""
    if object_storage.is_s3(url):
        return fsspec.core.url_to_fs(url, **object_storage.s3fs_options())
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"{url}: only local folders and s3:// URLs are supported")
    return LocalFileSystem(), os.path.abspath(url.removeprefix("file://")).rstrip("/") or "/"


def _same_store(one: fsspec.AbstractFileSystem, other: fsspec.AbstractFileSystem) -> bool:
    """The same server and identity (fsspec keeps an instance per thread, so not ``is``)."""
    return type(one) is type(other) and one.storage_options == other.storage_options


def _hidden(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.tmp")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
