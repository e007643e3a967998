"""Benchmark: pack a JPEG folder with imgclf versus the book's single-process recipe.

One run generates (or reuses) a seeded folder of synthetic photo-like JPEGs in class
subfolders, reads every file once so both methods decode from the page cache, then packs the
folder two ways, each in its own child process so that peak memory is measured per method:

- ours: `imgclf.data.packing.pack_split` (decoding on a thread per core, one resample, uint8 RGB,
  chunked HDF5);
- book: Rosebrock's Practitioner Bundle recipe (ch. 3 and 9): `cv2.imread`, the
  AspectAwarePreprocessor and the buffered float64 HDF5DatasetWriter, in one process.

It prints wall time, images/s, file size and peak RSS for each, the ratios ours/book, the
single-process JPEG decode rate as a ceiling for context, and how long indexing took.

Run from the repository root:

    .venv/bin/python bench/pack.py [--n 1000] [--photo-size 2000x1500] [--repeat 3]

The numbers depend on the machine (cores, CPU, disk, libjpeg build); compare ratios, not
absolute rates, across machines.
"""

import argparse
import csv
import functools
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np

from photos import JPEG_QUALITY, ensure_photos

CLASSES = 5
METHODS = ("ours", "book")
OURS_BATCH = 64


@dataclass(frozen=True)
class Run:
    """One packing run, as measured inside its child process."""

    method: str
    seconds: float
    images: int
    file_bytes: int
    peak_rss_kib: int  # of the packing process (VmHWM); its worker threads share it


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    parser.add_argument(
        "--photo-size",
        type=parse_wxh,
        default=(500, 375),
        metavar="WxH",
        help="nominal source photo size, varied by ±4%% (default 500x375)",
    )
    parser.add_argument("--size", type=int, default=224, help="packed square side (default 224)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; best is kept")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated photos")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/imgclf-bench-pack"),
        help="cache of generated photos and outputs",
    )
    parser.add_argument("--only", choices=METHODS, help=argparse.SUPPRESS)  # child process
    return parser.parse_args()


def parse_wxh(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 500x375, got {text!r}") from None
    return width, height


def photo_folder(args: argparse.Namespace) -> Path:
    width, height = args.photo_size
    return args.work / f"photos-n{args.n}-{width}x{height}-seed{args.seed}"


def output_folder(args: argparse.Namespace) -> Path:
    return args.work / "out" / photo_folder(args).name


# --- the book's recipe, deliberately not optimised --------------------------------------------


class AspectAwarePreprocessor:
    """Mirrors the book's ch. 2 preprocessor: resize the shorter side, crop, resize again."""

    def __init__(self, width: int, height: int, inter: int = cv2.INTER_AREA) -> None:
        self.width, self.height, self.inter = width, height, inter

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        (h, w) = image.shape[:2]
        d_w = d_h = 0
        if w < h:
            image = imutils_resize(image, width=self.width, inter=self.inter)
            d_h = int((image.shape[0] - self.height) / 2.0)
        else:
            image = imutils_resize(image, height=self.height, inter=self.inter)
            d_w = int((image.shape[1] - self.width) / 2.0)
        (h, w) = image.shape[:2]
        image = image[d_h : h - d_h, d_w : w - d_w]
        return cv2.resize(image, (self.width, self.height), interpolation=self.inter)


def imutils_resize(
    image: np.ndarray,
    width: int | None = None,
    height: int | None = None,
    inter: int = cv2.INTER_AREA,
) -> np.ndarray:
    """`imutils.resize` as the book uses it: scale to one side, truncating the other."""
    (h, w) = image.shape[:2]
    if width is None:
        ratio = height / float(h)
        dim = (int(w * ratio), height)
    else:
        ratio = width / float(w)
        dim = (width, int(h * ratio))
    return cv2.resize(image, dim, interpolation=inter)


class HDF5DatasetWriter:
    """Mirrors the book's ch. 3 writer: float64 images, a Python list buffer, slice flushes."""

    def __init__(
        self,
        dims: tuple[int, ...],
        output_path: Path,
        data_key: str = "images",
        buf_size: int = 1000,
    ) -> None:
        if output_path.exists():
            raise ValueError("The supplied `outputPath` already exists", output_path)
        self.db = h5py.File(output_path, "w")
        self.data = self.db.create_dataset(data_key, dims, dtype="float")
        self.labels = self.db.create_dataset("labels", (dims[0],), dtype="int")
        self.buf_size = buf_size
        self.buffer: dict[str, list] = {"data": [], "labels": []}
        self.idx = 0

    def add(self, rows: list[np.ndarray], labels: list[int]) -> None:
        self.buffer["data"].extend(rows)
        self.buffer["labels"].extend(labels)
        if len(self.buffer["data"]) >= self.buf_size:
            self.flush()

    def flush(self) -> None:
        i = self.idx + len(self.buffer["data"])
        self.data[self.idx : i] = self.buffer["data"]
        self.labels[self.idx : i] = self.buffer["labels"]
        self.idx = i
        self.buffer = {"data": [], "labels": []}

    def close(self) -> None:
        if len(self.buffer["data"]) > 0:
            self.flush()
        self.db.close()


def pack_book(paths: list[str], labels: list[int], out: Path, size: int) -> None:
    """The book's build loop (ch. 9): one image at a time, in this process."""
    aap = AspectAwarePreprocessor(size, size)
    writer = HDF5DatasetWriter((len(paths), size, size, 3), out)
    for path, label in zip(paths, labels, strict=True):
        image = aap.preprocess(cv2.imread(path))
        writer.add([image], [label])
    writer.close()


# --- the two methods, each run in a child process ---------------------------------------------


def read_manifest(path: Path) -> list[dict[str, str]]:
    # csv, not pandas: the book's child process should not pay for importing pandas.
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def peak_rss_kib() -> int:
    """This process's own peak RSS (VmHWM). `ru_maxrss` would also count the parent's peak
    at the time it spawned us, which Linux carries over."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_method(args: argparse.Namespace) -> Run:
    """Pack with `args.only` in this process; time only the packing call itself."""
    source, out_dir = photo_folder(args), output_folder(args)
    rows = read_manifest(out_dir / "manifest.csv")
    out = out_dir / f"{args.only}.h5"
    out.unlink(missing_ok=True)
    prepare = prepare_ours if args.only == "ours" else prepare_book
    pack = prepare(rows, source, out, args.size)
    start = time.perf_counter()
    pack()
    seconds = time.perf_counter() - start
    return Run(args.only, seconds, len(rows), out.stat().st_size, peak_rss_kib())


def prepare_book(
    rows: list[dict[str, str]], source: Path, out: Path, size: int
) -> Callable[[], object]:
    names = sorted({row["label"] for row in rows})
    labels = [names.index(row["label"]) for row in rows]
    paths = [str(source / row["path"]) for row in rows]
    return functools.partial(pack_book, paths, labels, out, size)


def prepare_ours(
    rows: list[dict[str, str]], source: Path, out: Path, size: int
) -> Callable[[], object]:
    """The library's pack_split with every image in split "train", on every core."""
    # Imported here so that the book's child process does not load pandas and the library.
    import pandas as pd

    from imgclf.core.config import PackParams
    from imgclf.data.packing import pack_split
    from imgclf.data.parallel import available_cores

    splits = pd.DataFrame(rows).astype({"width": int, "height": int}).assign(split="train")
    params = PackParams(batch_size=OURS_BATCH, interpolation="area")
    return functools.partial(
        pack_split,
        splits,
        "train",
        source,
        out,
        (size, size),
        params,
        seed=0,
        workers=available_cores(),
    )


def run_in_child(args: argparse.Namespace, method: str) -> Run:
    command = [
        sys.executable,
        __file__,
        "--only",
        method,
        "--n",
        str(args.n),
        "--photo-size",
        "x".join(map(str, args.photo_size)),
        "--size",
        str(args.size),
        "--seed",
        str(args.seed),
        "--work",
        str(args.work),
    ]
    result = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return Run(**json.loads(result.stdout.splitlines()[-1]))


# --- the parent: prepare, measure, report -----------------------------------------------------


def warm_page_cache(folder: Path) -> int:
    """Read every file once so that both methods decode from memory; return total bytes."""
    return sum(len(path.read_bytes()) for path in sorted(folder.rglob("*.jpg")))


def index_folder(source: Path, out_dir: Path) -> tuple[list[str], float]:
    """Index with the library (timed), save the manifest for the children; return paths."""
    from imgclf.core.config import DataParams
    from imgclf.data.indexing import build_index
    from imgclf.data.parallel import available_cores

    params = DataParams(
        source=str(source),
        labels="folder",
        pattern=r"(?P<label>.+)",
        manifest="manifest.csv",
        max_rejected=0.0,
        predefined=False,
    )
    start = time.perf_counter()
    index = build_index(params, workers=available_cores())
    seconds = time.perf_counter() - start
    if len(index.rejected):
        raise SystemExit(f"unexpected rejected files: {index.rejected.head()}")
    out_dir.mkdir(parents=True, exist_ok=True)
    index.manifest.to_csv(out_dir / "manifest.csv", index=False)
    return [str(source / path) for path in index.manifest["path"]], seconds


def decode_rate(paths: list[str]) -> float:
    """Images/s of plain full-size `cv2.imread`, single process: a ceiling for context."""
    start = time.perf_counter()
    for path in paths:
        cv2.imread(path)
    return len(paths) / (time.perf_counter() - start)


def print_report(runs: dict[str, Run], decode: float, index_seconds: float) -> None:
    mib = 1024 * 1024
    print(f"\n{'method':<6} {'seconds':>8} {'images/s':>9} {'file MiB':>9} {'peak RSS MiB':>13}")
    for run in runs.values():
        print(
            f"{run.method:<6} {run.seconds:8.2f} {run.images / run.seconds:9.1f} "
            f"{run.file_bytes / mib:9.1f} {run.peak_rss_kib / 1024:13.0f}"
        )
    ours, book = runs["ours"], runs["book"]
    print(f"\nthroughput ours/book: {book.seconds / ours.seconds:.2f}x  (target >= 4x)")
    print(f"file size  ours/book: {ours.file_bytes / book.file_bytes:.3f}  (target ~ 1/8)")
    print(f"JPEG decode ceiling (cv2.imread, 1 process, full size): {decode:.1f} images/s")
    print(
        f"index (build_index, decode-checks every file): {index_seconds:.2f} s, "
        f"{ours.images / index_seconds:.1f} images/s"
    )


def main() -> None:
    args = parse_args()
    if args.only:
        print(json.dumps(asdict(run_method(args))))
        return
    from imgclf.data.parallel import available_cores

    source = ensure_photos(photo_folder(args), args.n, args.photo_size, args.seed, CLASSES)
    total = warm_page_cache(source)
    print(f"cores available: {available_cores()}")
    print(
        f"{args.n} JPEGs (q{JPEG_QUALITY}) of about {'x'.join(map(str, args.photo_size))}, "
        f"{total / args.n / 1024:.0f} KiB each, -> {args.size}x{args.size}; warm page cache "
        f"(all files read once first); best of {args.repeat}"
    )
    paths, index_seconds = index_folder(source, output_folder(args))
    decode = max(decode_rate(paths) for _ in range(args.repeat))
    runs = {
        method: min(
            (run_in_child(args, method) for _ in range(args.repeat)), key=lambda run: run.seconds
        )
        for method in METHODS
    }
    print_report(runs, decode, index_seconds)


if __name__ == "__main__":
    main()
