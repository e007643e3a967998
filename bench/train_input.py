"""Benchmark: training steps/s fed from a streamed HDF5 pack versus in-memory NumPy arrays.

One run generates (or reuses) a seeded synthetic pack with `imgclf.data.hdf5io.PackWriter`, then
trains the same MiniVGGNet (SGD, fresh weights from the same seed every time) from three
sources with the same per-image random crop + flip, the same Keras augmentation layers
(rotation 10°, shift 0.1), the same batch size and prefetch:

- stream: `imgclf.data.inputs.training_dataset(..., cache=False)`, chunks read from HDF5 every
  epoch;
- cache:  the same with `cache=True` (decoded uint8 pack kept in memory after the first pass);
- numpy:  the baseline, the same images as NumPy arrays through `from_tensor_slices` ->
  shuffle -> crop + flip -> batch -> augmentation -> prefetch, so only the bytes' origin differs.

Each run warms up with a fit of one pass over the pack (which also fills the cache), then times
`model.fit(epochs=E, steps_per_epoch=S)`. Sources are interleaved across `--repeat` rounds and
the best round of each is kept; the spread (worst/best) shows how disturbed the machine was.
It prints steps/s, images/s, CPU time per step (less sensitive to other load than wall time),
the input pipeline's rate alone (no model), and the ratios stream/numpy and cache/numpy by
wall time and by CPU time (the target: stream >= 0.90 of numpy in steps/s).

With `--big` it also writes a pack larger than the `cnn.cache_mb` budget (default 12,000
images at 224x224, ~1.7 GiB) and streams two epochs of it through
`training_dataset(..., cache=False)` with augmentation, no model, in a child process, and
reports that process's peak RSS (Linux VmHWM) against the pack's size. The big pack is deleted
afterwards unless `--keep`.

Run from the repository root:

    .venv/bin/python bench/train_input.py [--big] [--repeat 3] [--n 4000 --size 36 --crop 32]

Absolute rates depend on the machine (cores, CPU, other load); compare the ratios.
"""

import argparse
import inspect
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imgclf.data.hdf5io import PackReader, PackWriter
from imgclf.data.inputs import (
    AUTOTUNE,
    PackInfo,
    _random_patch,  # the library's own crop + flip, so the baseline does exactly the same
    build_augmentation,
    shuffle_rows,
    training_dataset,
)
from imgclf.data.parallel import available_cores
from imgclf.models.architectures import build_architecture
from imgclf.models.training import compile_classifier

SOURCES = ("stream", "cache", "numpy")
ARCH = "minivggnet"
AUGMENT = {"rotation": 10.0, "shift": 0.1, "shear": 0.0, "zoom": 0.0}
LR, MOMENTUM = 0.01, 0.9
PIPELINE_BATCHES = 100  # batches per pipeline-only timing
MIB = 2**20


@dataclass(frozen=True)
class Timing:
    """One timed fit of one source."""

    source: str
    steps: int
    seconds: float  # the timed fit
    cpu_seconds: float  # CPU time (user + system, all threads) of this process during the fit
    pipeline_seconds: float  # PIPELINE_BATCHES batches of the input pipeline alone


@dataclass(frozen=True)
class StreamRun:
    """The big-pack streaming child's measurements."""

    images: int
    seconds: float
    rss_setup_kib: int  # peak RSS after imports and building the pipeline, before iterating
    rss_peak_kib: int  # peak RSS of the whole child


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="images in the pack (default 4000)")
    parser.add_argument("--size", type=int, default=36, help="packed square side (default 36)")
    parser.add_argument("--crop", type=int, default=32, help="training patch side (default 32)")
    parser.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument(
        "--chunk", type=int, default=256, help="rows per HDF5 chunk (default 256, as `pack`)"
    )
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (default 3)")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed epoch (50)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; best per source is kept")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, model and pipeline")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/imgclf-bench-train"),
        help="where packs are generated (and reused)",
    )
    parser.add_argument("--big", action="store_true", help="also measure streaming peak RSS")
    parser.add_argument("--big-n", type=int, default=12000, help="big pack images (12000)")
    parser.add_argument("--big-size", type=int, default=224, help="big pack side (224)")
    parser.add_argument("--big-crop", type=int, default=196, help="big pack patch side (196)")
    parser.add_argument(
        "--big-batches", type=int, default=0, help="batches to stream (default: two epochs)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the big pack afterwards")
    parser.add_argument("--stream", type=Path, help=argparse.SUPPRESS)  # child process
    return parser.parse_args()


# --- synthetic packs --------------------------------------------------------------------------


def pack_path(work: Path, n: int, size: int, classes: int, chunk: int, seed: int) -> Path:
    return work / f"pack-n{n}-{size}px-c{classes}-chunk{chunk}-seed{seed}.h5"


def ensure_pack(path: Path, n: int, size: int, classes: int, chunk: int, seed: int) -> Path:
    """Write the pack unless it exists (PackWriter renames into place only when complete).

    Each image is its class's colour gradient plus uniform noise; rows are written one chunk
    at a time, so generating a pack larger than memory stays bounded by a chunk.
    """
    if path.exists():
        return path
    print(f"generating {path} ...", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    patterns = class_patterns(rng, classes, size)
    names = [f"class{label}" for label in range(classes)]
    with PackWriter(path, n, (size, size, 3), names, chunk) as writer:
        for start in range(0, n, chunk):
            batch = labels[start : start + chunk]
            noise = rng.integers(0, 64, (len(batch), size, size, 3), dtype=np.uint8)
            paths = [f"synthetic/{index:06d}.png" for index in range(start, start + len(batch))]
            writer.write(patterns[batch] + noise, batch, paths)
    return path


def class_patterns(rng: np.random.Generator, classes: int, size: int) -> np.ndarray:
    """One uint8 (size, size, 3) gradient per class, values in [0, 191] so noise cannot wrap."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    start, stop = rng.uniform(0, 191, (2, classes, 1, 1, 3)).astype(np.float32)
    horizontal = rng.random(classes) < 0.5
    weights = np.where(horizontal[:, None, None], ramp[None, None, :], ramp[None, :, None])
    return (start + (stop - start) * weights[..., None]).astype(np.uint8)


# --- the three sources ------------------------------------------------------------------------


def augmentation(seed: int) -> keras.Sequential | None:
    return build_augmentation(**AUGMENT, seed=seed)


def hdf5_dataset(
    info: PackInfo, args: argparse.Namespace, *, cache: bool, crop: int
) -> tf.data.Dataset:
    return training_dataset(
        info,
        batch_size=args.batch,
        seed=args.seed,
        crop=(crop, crop),
        augmentation=augmentation(args.seed),
        cache=cache,
    )


def numpy_dataset(
    images: np.ndarray, labels: np.ndarray, args: argparse.Namespace
) -> tf.data.Dataset:
    """The baseline: the same patches, flips and augmentation layers from in-memory arrays,
    shuffled by tf.data (the usual Keras recipe), instead of our HDF5 stream."""
    seed, crop, layers = args.seed, (args.crop, args.crop), augmentation(args.seed)
    rows = tf.data.Dataset.from_tensor_slices((images, labels))
    rows = rows.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed + 2, rerandomize_each_iteration=True).batch(2)
    rows = tf.data.Dataset.zip(rows, seeds).map(
        lambda row, pair: (_random_patch(row[0], crop, pair), row[1]), num_parallel_calls=AUTOTUNE
    )
    batches = rows.repeat().batch(args.batch)
    if layers is not None:
        batches = batches.map(
            lambda batch, label: (layers(batch, training=True), label),
            num_parallel_calls=AUTOTUNE,
        )
    return batches.prefetch(AUTOTUNE)


def dataset_makers(
    info: PackInfo, args: argparse.Namespace
) -> dict[str, Callable[[], tf.data.Dataset]]:
    """A fresh dataset per call for each source; the baseline's arrays are read once."""
    with PackReader(info.path) as reader:
        images, labels = reader.images[:], reader.labels
    return {
        "stream": lambda: hdf5_dataset(info, args, cache=False, crop=args.crop),
        "cache": lambda: hdf5_dataset(info, args, cache=True, crop=args.crop),
        "numpy": lambda: numpy_dataset(images, labels, args),
    }


# --- timing -----------------------------------------------------------------------------------


def fresh_model(args: argparse.Namespace, classes: int) -> keras.Model:
    keras.utils.set_random_seed(args.seed)
    model = build_architecture(ARCH, (args.crop, args.crop, 3), classes)
    compile_classifier(model, keras.optimizers.SGD(LR, momentum=MOMENTUM))
    return model


def time_source(
    source: str, make: Callable[[], tf.data.Dataset], args: argparse.Namespace, info: PackInfo
) -> Timing:
    """Warm up with one pass over the pack (compiles, fills a cache), then time the fit."""
    model = fresh_model(args, len(info.label_names))
    data = make()
    warmup = math.ceil(info.count / args.batch)
    model.fit(data, epochs=1, steps_per_epoch=warmup, verbose=0, shuffle=False)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(data, epochs=args.epochs, steps_per_epoch=args.steps, verbose=0, shuffle=False)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    pipeline = pipeline_seconds(make(), info, args)
    return Timing(source, args.epochs * args.steps, seconds, cpu_seconds, pipeline)


def pipeline_seconds(data: tf.data.Dataset, info: PackInfo, args: argparse.Namespace) -> float:
    """Seconds for PIPELINE_BATCHES batches of the input pipeline alone, after one pass."""
    batches = iter(data)
    for _ in range(math.ceil(info.count / args.batch)):
        next(batches)
    start = time.perf_counter()
    for _ in range(PIPELINE_BATCHES):
        next(batches)
    return time.perf_counter() - start


def interleaved_rounds(
    makers: dict[str, Callable[[], tf.data.Dataset]], args: argparse.Namespace, info: PackInfo
) -> Iterator[Timing]:
    """Every source once per round, so a burst of outside load hits all of them alike."""
    for round_index in range(args.repeat):
        for source, make in makers.items():
            timing = time_source(source, make, args, info)
            print(
                f"  round {round_index + 1}/{args.repeat} {source:<6} "
                f"{timing.steps / timing.seconds:6.2f} steps/s",
                flush=True,
            )
            yield timing


# --- big pack: peak RSS of streaming, in a child process --------------------------------------


def stream_in_child(args: argparse.Namespace) -> StreamRun:
    """Iterate `--big-batches` batches of the streamed pipeline; runs in the child."""
    info = PackInfo.read(args.stream)
    data = hdf5_dataset(info, args, cache=False, crop=args.big_crop)
    setup = peak_rss_kib()
    batches = iter(data)
    # Two epochs by default: the restart at the epoch boundary raises the peak (heap reuse).
    count = args.big_batches or 2 * math.ceil(info.count / args.batch)
    start = time.perf_counter()
    images = sum(len(next(batches)[1]) for _ in range(count))
    seconds = time.perf_counter() - start
    return StreamRun(images, seconds, setup, peak_rss_kib())


def peak_rss_kib() -> int:
    """This process's peak RSS (Linux VmHWM). Not `getrusage`: a child's ru_maxrss starts at
    its parent's peak at spawn (the kernel carries it over on exec), ~1 GiB with TF loaded."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise OSError("no VmHWM in /proc/self/status (Linux only)")


def run_stream_child(path: Path, args: argparse.Namespace) -> StreamRun:
    command = [
        sys.executable,
        __file__,
        "--stream",
        str(path),
        "--batch",
        str(args.batch),
        "--big-crop",
        str(args.big_crop),
        "--big-batches",
        str(args.big_batches),
        "--seed",
        str(args.seed),
    ]
    result = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return StreamRun(**json.loads(result.stdout.splitlines()[-1]))


def shuffle_buffer_bytes(info: PackInfo) -> int:
    """Bytes of decoded rows the streaming shuffle buffer holds at most."""
    default = inspect.signature(training_dataset).parameters["shuffle_mb"].default
    return shuffle_rows(info, default) * math.prod(info.image_shape)


def measure_big(args: argparse.Namespace) -> None:
    path = pack_path(args.work, args.big_n, args.big_size, args.classes, args.chunk, args.seed)
    try:
        ensure_pack(path, args.big_n, args.big_size, args.classes, args.chunk, args.seed)
        info, size = PackInfo.read(path), path.stat().st_size
        run = run_stream_child(path, args)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
    print(
        f"\nbig pack: {info.count} images {args.big_size}x{args.big_size}, chunks of "
        f"{info.chunk_rows} rows, {size / MIB:.0f} MiB; streamed {run.images} images "
        f"(crop {args.big_crop}, batch {args.batch}, augmentation) in {run.seconds:.1f} s, "
        f"{run.images / run.seconds:.0f} images/s, in a child process"
    )
    print(f"  peak RSS after imports + pipeline setup: {run.rss_setup_kib / 1024:7.0f} MiB")
    print(f"  peak RSS while streaming:                {run.rss_peak_kib / 1024:7.0f} MiB")
    print(
        f"  peak RSS / pack size: {run.rss_peak_kib * 1024 / size:.2f}; growth while "
        f"streaming / pack size: {(run.rss_peak_kib - run.rss_setup_kib) * 1024 / size:.2f} "
        f"(the shuffle buffer alone holds up to {shuffle_buffer_bytes(info) / MIB:.0f} MiB)"
    )


# --- report -----------------------------------------------------------------------------------


def print_report(timings: list[Timing], args: argparse.Namespace) -> None:
    rounds = {source: [t for t in timings if t.source == source] for source in SOURCES}
    best = {source: min(runs, key=lambda t: t.seconds) for source, runs in rounds.items()}
    cpu = {source: min(t.cpu_seconds / t.steps for t in runs) for source, runs in rounds.items()}
    pipeline = {source: min(t.pipeline_seconds for t in runs) for source, runs in rounds.items()}
    print(
        f"\n{'source':<7} {'steps/s':>8} {'images/s':>9} {'spread':>7} {'CPU ms/step':>12} "
        f"{'pipeline-only images/s':>23}"
    )
    for source, timing in best.items():
        worst = max(t.seconds for t in rounds[source])
        rate = timing.steps / timing.seconds
        print(
            f"{source:<7} {rate:8.2f} {rate * args.batch:9.0f} {worst / timing.seconds:7.2f} "
            f"{1000 * cpu[source]:12.1f} {PIPELINE_BATCHES * args.batch / pipeline[source]:23.0f}"
        )
    targets = {"stream": "  (target: >= 0.90 by steps/s)", "cache": ""}
    print()
    for source, target in targets.items():
        print(
            f"{source + '/numpy:':<14}{best['numpy'].seconds / best[source].seconds:.3f} by "
            f"steps/s, {cpu['numpy'] / cpu[source]:.3f} by CPU time per step{target}"
        )
    print(
        "(spread = slowest/fastest round; CPU ms/step = least CPU time, all threads of this "
        "process, per timed step over the rounds; pipeline-only = the input pipeline alone, "
        "best round)"
    )


def main() -> None:
    args = parse_args()
    if args.stream:
        print(json.dumps(asdict(stream_in_child(args))))
        return
    path = pack_path(args.work, args.n, args.size, args.classes, args.chunk, args.seed)
    info = PackInfo.read(ensure_pack(path, args.n, args.size, args.classes, args.chunk, args.seed))
    print(
        f"cores available: {available_cores()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}\n"
        f"{info.count} images {args.size}x{args.size}, {len(info.label_names)} classes, chunks "
        f"of {info.chunk_rows} rows -> crop {args.crop}x{args.crop} + flip, augmentation "
        f"{AUGMENT}; {ARCH}, SGD, batch {args.batch}; timed fit {args.epochs} epochs x "
        f"{args.steps} steps after a one-pass warm-up; best of {args.repeat}"
    )
    timings = list(interleaved_rounds(dataset_makers(info, args), args, info))
    print_report(timings, args)
    if args.big:
        measure_big(args)


if __name__ == "__main__":
    main()
