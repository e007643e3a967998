"""Benchmark: what the pixel and perceptual hashes cost `index`.

`index` decodes every file once to check it; since the hashes it records for duplicate
search are computed on that decoded image, the extra cost is hashing alone. This runs
`imgclf.data.indexing.build_index` on a seeded folder of synthetic photo-like JPEGs with the
hashing as shipped and with the two hash functions replaced by no-ops (the index before them),
alternating the two so that a busy machine slows both alike, and prints the best wall time
and the best CPU time (all threads of this process) of each, and their ratios. The issue's
limit is 1.10 (at most 10 % slower).

Whole runs differ by more than that from one run to the next on a shared machine, so it also
reads each worker thread's own CPU clock (`time.thread_time`, summed over all runs) around
`image_facts` (read, MD5, decode, hashes) in both variants, and around the two hash functions:
the ratio of `image_facts` with and without, and the hashes' own share, (all) / (all -
hashes). The two differ when hashing in one thread slows the decoding in the other.

Run from the repository root:

    .venv/bin/python bench/index_hashing.py [--n 500] [--photo-size 500x375] [--repeat 3]
"""

import argparse
import threading
import time
from collections.abc import Callable
from pathlib import Path

from imgclf.core.config import DataParams
from imgclf.data import imaging, indexing
from imgclf.data.indexing import build_index
from imgclf.data.parallel import available_cores
from photos import ensure_photos

CLASSES = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="number of images (default 500)")
    parser.add_argument("--photo-size", default="500x375", help="nominal WxH (default 500x375)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; best is kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/imgclf-bench-pack"))
    return parser.parse_args()


class ThreadClock:
    """Thread CPU seconds spent inside wrapped functions, summed over threads."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def wrap(self, function: Callable) -> Callable:
        def timed(*args: object) -> object:
            start = time.thread_time()
            try:
                return function(*args)
            finally:
                with self._lock:
                    self.seconds += time.thread_time() - start

        return timed


def timed_index(source: Path, hashing: bool, workers: int) -> tuple[float, float, float, float]:
    """Wall and CPU seconds for one build_index, with the fingerprints computed or skipped,
    and the worker threads' CPU seconds in `image_facts` and in the hashes."""
    shipped = imaging.pixel_hash, imaging.perceptual_hash, indexing.image_facts
    facts, hashes = ThreadClock(), ThreadClock()
    indexing.image_facts = facts.wrap(indexing.image_facts)
    if hashing:
        imaging.pixel_hash, imaging.perceptual_hash = map(hashes.wrap, shipped[:2])
    else:
        imaging.pixel_hash = imaging.perceptual_hash = lambda image: ""
    params = DataParams(str(source), "folder", "x", "labels.csv", 0.0, False)
    try:
        start, start_cpu = time.perf_counter(), time.process_time()
        build_index(params, workers=workers)
        wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    finally:
        imaging.pixel_hash, imaging.perceptual_hash, indexing.image_facts = shipped
    return wall, cpu, facts.seconds, hashes.seconds


def main() -> None:
    args = parse_args()
    width, height = (int(side) for side in args.photo_size.split("x"))
    folder = args.work / f"photos-n{args.n}-{width}x{height}-seed{args.seed}"
    ensure_photos(folder, args.n, (width, height), args.seed, CLASSES)
    workers = available_cores()
    timed_index(folder, True, workers)  # warm the page cache
    runs: dict[bool, list[tuple[float, float, float, float]]] = {False: [], True: []}
    for _ in range(args.repeat):
        for hashing in (False, True):
            runs[hashing].append(timed_index(folder, hashing, workers))
    wall = {hashing: min(run[0] for run in runs[hashing]) for hashing in runs}
    cpu = {hashing: min(run[1] for run in runs[hashing]) for hashing in runs}
    print(f"{args.n} JPEGs of about {width}x{height}, {workers} workers, best of {args.repeat}")
    print(f"{'variant':<16}{'wall s':>8}{'images/s':>10}{'CPU s':>8}")
    for hashing, name in ((False, "without hashes"), (True, "with hashes")):
        rate = args.n / wall[hashing]
        print(f"{name:<16}{wall[hashing]:>8.2f}{rate:>10.0f}{cpu[hashing]:>8.2f}")
    wall_ratio, cpu_ratio = wall[True] / wall[False], cpu[True] / cpu[False]
    print(f"ratio with/without: wall {wall_ratio:.3f}, CPU {cpu_ratio:.3f}")
    per_image = 1000 / (args.n * args.repeat)  # ms per image, from seconds over all runs
    facts = {hashing: sum(run[2] for run in runs[hashing]) * per_image for hashing in runs}
    hashes = sum(run[3] for run in runs[True]) * per_image
    print(
        f"worker threads' CPU per image in image_facts: {facts[False]:.3f} ms without hashes, "
        f"{facts[True]:.3f} ms with (the hashes themselves {hashes:.3f} ms)"
    )
    print(
        f"ratio with/without: image_facts {facts[True] / facts[False]:.3f}; hashes alone "
        f"{facts[True] / (facts[True] - hashes):.3f}"
    )
    print("(the issue's limit: 1.10)")


if __name__ == "__main__":
    main()
