"""The landing zone's S3 client, measured: s3fs through fsspec (what ``storage.py`` uses) against obstore.

One SeaweedFS on loopback (the tests' fixture), and the work the landing zone does on a bucket:

- list a prefix of N objects (each landing sensor tick),
- hash one large object, streamed (the sensor and the load each read a landed file once),
- copy it into the archive: within one bucket, and into another bucket (the layout
  ``deploy/cluster.env`` suggests: landing, archive and quarantine each a bucket, so each role
  gets rights on exactly what it needs). s3fs copies server-side either way; obstore's copy works
  within one store (one bucket) only, so across buckets it streams the object down and up again.

Each operation runs ``--repeat`` times for each client, interleaved, and the median is taken; the
table shows seconds and the ratio s3fs / obstore (above 1: s3fs is slower). The same work on a
local folder is the baseline for what the server and the network cost.

    .venv/bin/python benchmarks/landing_storage.py [--objects 500] [--megabytes 256] [--repeat 5]
"""

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import obstore  # noqa: E402

from platform_assets.storage import Place  # noqa: E402
from platform_assets_tests.fixtures.object_store import seaweedfs  # noqa: E402

CHUNK = 8 * 2**20


def obstore_sha256(store, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in obstore.get(store, key).stream(min_chunk_size=CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def obstore_stream_copy(source, key: str, target, target_key: str) -> None:
    """Across stores: down in chunks, up as a multipart upload."""
    with obstore.open_writer(target, target_key) as out:
        for chunk in obstore.get(source, key).stream(min_chunk_size=CHUNK):
            out.write(chunk)


def local_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


ERRORS: list[str] = []  # transient errors of the server (SeaweedFS answers a part copy with a 500 now and then)


def median_seconds(work, repeat: int) -> float:
    """The median of ``repeat`` timings; an attempt the server fails is timed again (at most twice), and said."""
    times = []
    for _ in range(repeat):
        for attempt in range(3):
            started = time.perf_counter()
            try:
                work()
                break
            except OSError as error:
                ERRORS.append(f"{type(error).__name__}: {error}")
                if attempt == 2:
                    raise
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--megabytes", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: proves it runs")
    args = parser.parse_args()
    if args.smoke:
        args.objects, args.megabytes, args.repeat = 20, 4, 1

    with tempfile.TemporaryDirectory(prefix="bench-storage-") as work, \
            seaweedfs(Path(work) / "object_store", buckets=("landing", "archive"), volumes=400) as store:
        os.environ.update(store.env("admin"))
        bucket, archive = store.bucket("landing"), store.bucket("archive")
        folder = Path(work) / "landing"
        (folder / "many").mkdir(parents=True)
        big = os.urandom(args.megabytes * 2**20)
        for n in range(args.objects):
            obstore.put(bucket, f"many/sales_{n:05d}.csv", b"Store,Sales\n1,2\n")
            (folder / "many" / f"sales_{n:05d}.csv").write_bytes(b"Store,Sales\n1,2\n")
        obstore.put(bucket, "big.csv", big)
        (folder / "big.csv").write_bytes(big)
        expected = hashlib.sha256(big).hexdigest()

        place, archive_place = Place("s3://landing"), Place("s3://archive")
        big_entry = place.entry("big.csv")
        assert big_entry.sha256() == obstore_sha256(bucket, "big.csv") == local_sha256(folder / "big.csv") == expected
        copies = iter(range(10**6))
        operations = {
            f"list {args.objects} objects": (
                lambda: len(place.entries("many")),
                lambda: len(obstore.list(bucket, prefix="many/").collect()),
                lambda: len(os.listdir(folder / "many"))),
            f"hash {args.megabytes} MiB": (
                big_entry.sha256,
                lambda: obstore_sha256(bucket, "big.csv"),
                lambda: local_sha256(folder / "big.csv")),
            f"copy {args.megabytes} MiB": (
                lambda: place.copy_whole(big_entry, f"copies/s3fs-{next(copies)}.csv"),
                lambda: obstore.copy(bucket, "big.csv", f"copies/obstore-{next(copies)}.csv"),
                lambda: shutil.copyfile(folder / "big.csv", folder / f"copy-{next(copies)}.csv")),
            f"copy {args.megabytes} MiB across": (
                lambda: archive_place.copy_whole(big_entry, f"s3fs-{next(copies)}.csv"),
                lambda: obstore_stream_copy(bucket, "big.csv", archive, f"obstore-{next(copies)}.csv"),
                lambda: shutil.copyfile(folder / "big.csv", folder / f"copy-{next(copies)}.csv")),
        }
        print(f"{'operation':<29} {'s3fs (fsspec)':>14} {'obstore':>10} {'local folder':>13} {'s3fs/obstore':>13}")
        for name, (with_s3fs, with_obstore, on_disk) in operations.items():
            s3fs_times, obstore_times = [], []
            for _ in range(args.repeat):  # interleaved, so a busy moment of the machine hits both
                s3fs_times.append(median_seconds(with_s3fs, 1))
                obstore_times.append(median_seconds(with_obstore, 1))
            s3fs_s, obstore_s = statistics.median(s3fs_times), statistics.median(obstore_times)
            local_s = median_seconds(on_disk, args.repeat)
            print(f"{name:<29} {s3fs_s:>13.3f}s {obstore_s:>9.3f}s {local_s:>12.3f}s {s3fs_s / obstore_s:>12.2f}x")
        if ERRORS:
            print(f"{len(ERRORS)} attempt(s) failed on the server and were timed again: {sorted(set(ERRORS))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
