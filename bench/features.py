"""Benchmark: images/s of the features stage versus the book's method and in-memory ceilings.

One run generates (or reuses) a seeded folder of synthetic photo-like JPEGs of about 500x375
in class subfolders and a 224x224 pack of them made with the library (`build_index` ->
`pack_split`), then, for each backbone arch (random weights: speed does not depend on them),
measures images/s of:

- (a) ours: `imgclf.models.features.extract_features` from the pack to an HDF5 file, with
  `jit_compile` False and True (the stage's `features.jit_compile` chooses). A stage run
  traces (and with XLA compiles) its function once: that first call is reported on its own,
  and the timed calls reuse the traced function (the library's code is otherwise unchanged);
- (b) book: the Practitioner Bundle's extract_features.py loop: keras `load_img` +
  `img_to_array` per image from the JPEG folder, the arch's `preprocess_input`, and
  `model.predict` per batch on the raw application (include_top=False, pooling="avg");
- (c) ceiling: the same feature extractor as (a) on in-memory float32 tensors of the same
  batch size, called three ways: `predict`, a `tf.function` call, `tf.function(jit_compile=True)`;
- for context, the stage's input pipeline alone (`evaluation_dataset`, no model).

Every method is warmed up first; tracing and XLA compilation are excluded from the timed part
and reported separately. Methods are interleaved over `--repeat` rounds, every other round in
reverse order (a b c, c b a, ...); the table shows the best round and the spread (worst-best).
A second table gives images per CPU-second of this process (all its threads), which other
jobs on the machine disturb less. It ends with the best (c) mode per arch and the ratios
(a)/(best c) (target >= 0.90) and (a)/(b), by wall time, and (a)/(c) of the same mode by CPU
time: whether the stage does more work per image than the model alone.

Run from the repository root:

    .venv/bin/python bench/features.py [--n 256] [--archs mobilenet_v2 resnet50] [--batch 32]

The numbers depend on the machine (cores, CPU, TensorFlow build) and are noisy on a shared
machine: compare ratios from the same run, not absolute rates across runs.
"""

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

import imgclf.models.features
from imgclf.core.config import DataParams, PackParams
from imgclf.data.hdf5io import PackReader
from imgclf.data.indexing import build_index
from imgclf.data.inputs import PackInfo, evaluation_dataset
from imgclf.data.packing import pack_split
from imgclf.data.parallel import available_cores
from imgclf.models.backbones import build_backbone
from imgclf.models.features import extract_features, feature_extractor
from photos import ensure_photos

SIZE = (224, 224)
PHOTO_SIZE = (500, 375)
CLASSES = 4
PACK_BATCH = 256  # params.yaml pack.batch_size: rows per HDF5 chunk
# arch -> (keras.applications constructor, its preprocess_input), as the book calls them.
APPLICATIONS: dict[str, tuple[Callable[..., keras.Model], Callable[[np.ndarray], np.ndarray]]] = {
    "resnet50": (keras.applications.ResNet50, keras.applications.resnet50.preprocess_input),
    "vgg16": (keras.applications.VGG16, keras.applications.vgg16.preprocess_input),
    "mobilenet_v2": (
        keras.applications.MobileNetV2,
        keras.applications.mobilenet_v2.preprocess_input,
    ),
    "efficientnet_b0": (
        keras.applications.EfficientNetB0,
        keras.applications.efficientnet.preprocess_input,
    ),
}
OURS = {"(a) ours, tf.function": False, "(a) ours, XLA": True}  # label -> jit_compile
BOOK = "(b) book: load_img + predict"
CEILINGS = {"predict": "(c) predict", "function": "(c) tf.function", "xla": "(c) XLA"}
INPUT = "input only (evaluation_dataset)"
ROWS = (*OURS, BOOK, *CEILINGS.values(), INPUT)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256, help="number of images (default 256)")
    parser.add_argument(
        "--archs",
        nargs="+",
        choices=list(APPLICATIONS),
        default=["mobilenet_v2", "resnet50"],
        help="backbones (default: mobilenet_v2 resnet50)",
    )
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated photos")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/imgclf-bench-features"),
        help="cache of generated photos, pack and outputs",
    )
    return parser.parse_args()


# --- data: synthetic JPEG folder and its pack, made once and cached ---------------------------


def ensure_pack(source: Path, pack: Path) -> None:
    """Index `source` and pack every image at 224x224 with the library, unless done before."""
    if pack.exists():  # PackWriter renames into place only once every row is written
        return
    params = DataParams(
        source=str(source),
        labels="folder",
        pattern=r"(?P<label>.+)",
        manifest="manifest.csv",
        max_rejected=0.0,
        predefined=False,
    )
    workers = available_cores()
    manifest = build_index(params, workers=workers).manifest
    pack_split(
        manifest.assign(split="train"),
        "train",
        source,
        pack,
        SIZE,
        PackParams(batch_size=PACK_BATCH, interpolation="area"),
        seed=0,
        workers=workers,
    )


# --- (a) the features stage -------------------------------------------------------------------


class ReusedFunctions:
    """Stands in for `tf` inside imgclf.models.features: `function` hands back the function made by
    an earlier call with the same model and options, already traced (and compiled), so a warm
    `extract_features` call times what a stage pays per batch; everything else is `tf`."""

    def __init__(self) -> None:
        self.made: dict[tuple, Callable] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(tf, name)

    def function(self, python_function: Callable, **options: Any) -> Callable:
        captured = tuple(id(cell.cell_contents) for cell in python_function.__closure__ or ())
        key = (captured, tuple(sorted(options.items())))
        if key not in self.made:
            self.made[key] = tf.function(python_function, **options)
        return self.made[key]


def stage_call(
    extractor: keras.Model, pack: Path, out: Path, batch: int, jit_compile: bool, tf_: Any
) -> Callable[[], object]:
    """One `extract_features` call, with `tf_` standing in for the features module's `tf`."""

    def call() -> None:
        with mock.patch.object(imgclf.models.features, "tf", tf_):
            extract_features(extractor, pack, out, batch_size=batch, jit_compile=jit_compile)

    return call


def input_pass(pack: Path, batch: int) -> Callable[[], object]:
    """The stage's input pipeline alone: HDF5 chunks -> float32 batches, no model."""
    info = PackInfo.read(pack)
    return lambda: sum(1 for _ in evaluation_dataset(info, batch_size=batch))


# --- (b) the book's method --------------------------------------------------------------------


def book_features(
    model: keras.Model,
    preprocess: Callable[[np.ndarray], np.ndarray],
    paths: list[str],
    batch: int,
) -> np.ndarray:
    """extract_features.py of the book: load_img per image, predict per batch."""
    features = np.empty((len(paths), model.output_shape[-1]), np.float32)
    for start in range(0, len(paths), batch):
        rows = []
        for path in paths[start : start + batch]:
            image = keras.utils.img_to_array(keras.utils.load_img(path, target_size=SIZE))
            rows.append(np.expand_dims(image, 0))
        images = preprocess(np.vstack(rows))
        features[start : start + len(images)] = model.predict(images, batch_size=batch, verbose=0)
    return features


def book_model(arch: str) -> keras.Model:
    constructor, _ = APPLICATIONS[arch]
    return constructor(include_top=False, weights=None, input_shape=(*SIZE, 3), pooling="avg")


# --- (c) in-memory ceilings -------------------------------------------------------------------


def ceiling_calls(
    extractor: keras.Model, images: np.ndarray, batch: int
) -> tuple[dict[str, Callable[[], object]], dict[str, float]]:
    """Per (c) row, one pass of `extractor` over in-memory batches, warmed up; and for the
    tf.function modes, the seconds a first call took beyond a warm one (tracing, compiling)."""
    starts = range(0, len(images), batch)
    batches = [tf.constant(images[start : start + batch]) for start in starts]
    functions = {
        "function": tf.function(lambda x: extractor(x, training=False)),
        "xla": tf.function(lambda x: extractor(x, training=False), jit_compile=True),
    }
    first_call_extra = {mode: warm_up(function, batches) for mode, function in functions.items()}
    calls = {
        CEILINGS["predict"]: lambda: extractor.predict(images, batch_size=batch, verbose=0),
        **{CEILINGS[mode]: loop(function, batches) for mode, function in functions.items()},
    }
    calls[CEILINGS["predict"]]()  # warm-up
    return calls, first_call_extra


def warm_up(function: Callable[[tf.Tensor], tf.Tensor], batches: list[tf.Tensor]) -> float:
    """Call `function` on the first batch twice and on the last (maybe shorter) one; return the
    first call's seconds beyond the second's."""
    first = timed(lambda: function(batches[0]).numpy())
    extra = first - timed(lambda: function(batches[0]).numpy())
    function(batches[-1]).numpy()
    return extra


def loop(
    function: Callable[[tf.Tensor], tf.Tensor], batches: list[tf.Tensor]
) -> Callable[[], object]:
    return lambda: [function(tensor).numpy() for tensor in batches]


# --- measuring and reporting ------------------------------------------------------------------


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


@dataclass
class Arch:
    """One backbone's methods under test and its measured images/s per table row."""

    methods: dict[str, Callable[[], object]]  # table row -> one pass over the n images
    first_call_extra: dict[str, float]  # per (c) tf.function mode: tracing, XLA compilation
    cold_stage_s: dict[str, float]  # per (a) mode: the first call, as a stage run makes it
    # Per table row, one value per round: images per second of wall time, and of this
    # process's CPU time (all its threads).
    rates: dict[str, list[float]] = field(default_factory=lambda: {row: [] for row in ROWS})
    cpu_rates: dict[str, list[float]] = field(default_factory=lambda: {row: [] for row in ROWS})


def prepare_arch(arch: str, pack: Path, source: Path, out: Path, batch: int) -> Arch:
    """Build both models and warm every method up."""
    keras.utils.set_random_seed(0)
    extractor = feature_extractor(build_backbone(arch, (*SIZE, 3), "none"), "avg")
    model, (_, preprocess) = book_model(arch), APPLICATIONS[arch]
    with PackReader(pack) as reader:
        images = reader.images[:].astype(np.float32)
        paths = [str(source / path) for path in reader.paths]
    reused = ReusedFunctions()
    ours = {
        label: stage_call(extractor, pack, out, batch, jit_compile, reused)
        for label, jit_compile in OURS.items()
    }
    cold = {label: timed(call) for label, call in ours.items()}  # each traces: a stage run
    for book_paths in (paths[:batch], paths[len(paths) - len(paths) % batch :]):
        if book_paths:  # warm-up, also for a shorter last batch
            book_features(model, preprocess, book_paths, batch)
    ceilings, first_call_extra = ceiling_calls(extractor, images, batch)
    methods = {
        **ours,
        BOOK: lambda: book_features(model, preprocess, paths, batch),
        **ceilings,
        INPUT: input_pass(pack, batch),
    }
    methods[INPUT]()  # warm-up
    return Arch(methods, first_call_extra, cold)


def measure_round(arch: Arch, n: int, reverse: bool) -> None:
    """Time every method of `arch` once, in table order or reversed (so a trend in the
    machine's load during a round does not always favour the same methods)."""
    for row in reversed(ROWS) if reverse else ROWS:
        cpu_start, start = time.process_time(), time.perf_counter()
        arch.methods[row]()
        arch.rates[row].append(n / (time.perf_counter() - start))
        arch.cpu_rates[row].append(n / (time.process_time() - cpu_start))


def print_table(title: str, table: dict[str, dict[str, list[float]]]) -> None:
    """`table`: arch -> row -> one value per round."""
    width = max(map(len, ROWS))
    print(f"\n{title}")
    print(f"{'method':<{width}}" + "".join(f" {name:>20}" for name in table))
    for row in ROWS:
        cells = [spread(rates[row]) for rates in table.values()]
        print(f"{row:<{width}}" + "".join(f" {cell:>20}" for cell in cells))


def spread(rates: list[float]) -> str:
    return f"{max(rates):.1f} ({min(rates):.1f}-{max(rates):.1f})"


def print_ratios(name: str, arch: Arch, n: int) -> None:
    best = {row: max(rates) for row, rates in arch.rates.items()}
    mode = max(CEILINGS, key=lambda mode: best[CEILINGS[mode]])
    ceiling = best[CEILINGS[mode]]
    extra = arch.first_call_extra
    print(
        f"\n{name}: best (c) = {CEILINGS[mode]} {ceiling:.1f} img/s; first call beyond a warm "
        f"one (tracing, compiling): tf.function {extra['function']:.1f} s, "
        f"XLA {extra['xla']:.1f} s"
    )
    cpu_best = {row: max(rates) for row, rates in arch.cpu_rates.items()}
    for label, same_mode in zip(OURS, (CEILINGS["function"], CEILINGS["xla"]), strict=True):
        cold = arch.cold_stage_s[label]
        print(
            f"  {label}: /best(c) {best[label] / ceiling:.2f} (target >= 0.90), "
            f"/book {best[label] / best[BOOK]:.2f}; per CPU-s /{same_mode} "
            f"{cpu_best[label] / cpu_best[same_mode]:.2f}; first call (tracing included, as "
            f"a stage run): {cold:.1f} s, {n / cold:.1f} img/s"
        )


def main() -> None:
    args = parse_args()
    source = args.work / f"photos-n{args.n}-seed{args.seed}"
    pack = args.work / f"{source.name}-{SIZE[0]}x{SIZE[1]}.h5"
    ensure_photos(source, args.n, PHOTO_SIZE, args.seed, CLASSES)
    ensure_pack(source, pack)
    out = args.work / "features.h5"
    print(
        f"{args.n} JPEGs of about {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} -> {SIZE[0]}x{SIZE[1]} pack; "
        f"batch {args.batch}; {available_cores()} cores; TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}; random weights"
    )
    archs = {}
    for name in args.archs:
        print(f"warming up {name} ...", flush=True)
        archs[name] = prepare_arch(name, pack, source, out, args.batch)
    for round_ in range(args.repeat):
        print(f"round {round_ + 1}/{args.repeat} ...", flush=True)
        for arch in archs.values():
            measure_round(arch, args.n, reverse=round_ % 2 == 1)
    rounds = f"best of {args.repeat} rounds (worst-best)"
    print_table(f"images/s, {rounds}", {name: arch.rates for name, arch in archs.items()})
    print_table(
        f"images per CPU-second of this process (less sensitive to other load), {rounds}",
        {name: arch.cpu_rates for name, arch in archs.items()},
    )
    for name, arch in archs.items():
        print_ratios(name, arch, args.n)


if __name__ == "__main__":
    main()
