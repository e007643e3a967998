"""Benchmark: what syncing outputs to the disk costs (`imgclf.core.fileio.atomic_output`:
fsync of what the block made, rename, fsync of the folder), against the same temporary and
rename without the syncs (what a kill -9 alone needs), measured in the same run, in the same
folder. Rows: a metrics JSON (as every stage writes), a 4 MiB file (the demo's train pack is
3.9 MiB) and a SavedModel folder (the demo's export, copied from `models/export` when it is
there, else made of random files of its sizes). Each row keeps the median of `--repeat`
writes. Run from the repository root (the folder decides the file system measured):

    .venv/bin/python bench/durability.py [--repeat 30] [--folder bench/out]
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from imgclf.core.atomicfiles import remove, temporary_beside
from imgclf.core.fileio import atomic_output

SAVEDMODEL = Path("models/export/saved_model")
RANDOM = os.urandom(4 << 20)


def unsynced_write(path: Path, make: Callable[[Path], None]) -> None:
    """The baseline: temporary beside `path`, renamed, no fsync."""
    temporary = temporary_beside(path)
    make(temporary)
    os.replace(temporary, path)


def synced_write(path: Path, make: Callable[[Path], None]) -> None:
    with atomic_output(path) as temporary:
        make(temporary)


def metrics_json(path: Path) -> None:
    path.write_text('{"accuracy": 0.8435, "interval": [0.81, 0.87]}\n' * 40)


def pack(path: Path) -> None:
    path.write_bytes(RANDOM)


def savedmodel(path: Path) -> None:
    if SAVEDMODEL.is_dir():
        shutil.copytree(SAVEDMODEL, path)
        return
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(RANDOM[:400_000])
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(RANDOM[:440_000])
    (path / "variables" / "variables.index").write_bytes(RANDOM[:4_000])
    (path / "fingerprint.pb").write_bytes(RANDOM[:60])


def median_ms(write: Callable, make: Callable, folder: Path, repeat: int) -> float:
    times = []
    for attempt in range(repeat):
        path = folder / f"{make.__name__}{attempt}"
        start = time.perf_counter()
        write(path, make)
        times.append(time.perf_counter() - start)
        remove(path)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--folder", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.folder) as scratch:
        print(f"{'output':<12} {'unsynced ms':>12} {'synced ms':>10} {'synced/unsynced':>16}")
        for make in (metrics_json, pack, savedmodel):
            baseline = median_ms(unsynced_write, make, Path(scratch), args.repeat)
            synced = median_ms(synced_write, make, Path(scratch), args.repeat)
            print(
                f"{make.__name__:<12} {baseline:>12.2f} {synced:>10.2f} {synced / baseline:>16.1f}"
            )


if __name__ == "__main__":
    main()
