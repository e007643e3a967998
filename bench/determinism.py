"""Benchmark: what `base.deterministic: true` costs. Training and feature-extraction
throughput with the deterministic set-up (oneDNN capped at AVX2, a 2-thread pool, op
determinism, one BLAS thread; `imgclf.models.runtime.setup`) against `false` (the CPU's
fastest kernels, a pool as large as the machine), measured in the same run.

Every measurement runs in a child process of its own: oneDNN fixes its instruction set when
it makes its first kernel, so one process cannot measure both modes.

- training: the demo's MiniVGGNet (packs of 32x32, 28x28 patches, mean subtraction, SGD,
  batch 64) fit on a synthetic pack of `--n` images from `imgclf.data.inputs`; images/s over
  the epochs after the first (which traces the step);
- features: the features stage's code (`extract_features`) with a MobileNetV2 and a ResNet50
  body at 224x224 (random weights: speed does not depend on them) over `--n-features` images;
  images/s of a pass that reuses the function traced by a first one (as bench/features.py).

Modes alternate over `--repeat` rounds (fast, deterministic, deterministic, fast, ...); the
table shows the best round of each, images per CPU-second beside it, and the ratio
deterministic / fast. Run from the repository root:

    .venv/bin/python bench/determinism.py [--n 2048] [--n-features 256] [--repeat 3]
"""

# imgclf first: importing it pins NumPy's and OpenBLAS's kernels before they load.
import imgclf  # noqa: F401

# isort: split
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from imgclf.data.hdf5io import PackWriter

OUT = Path("bench/out/determinism")
MODES = {"fast": False, "deterministic": True}
TASKS = ("training minivggnet 32x32", "features mobilenet_v2 224x224", "features resnet50 224x224")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2048, help="images in the training pack")
    parser.add_argument("--epochs", type=int, default=3, help="timed training epochs")
    parser.add_argument("--n-features", type=int, default=256, help="images for features")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per mode")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "TASK"), help=argparse.SUPPRESS)
    return parser.parse_args()


def ensure_pack(path: Path, count: int, size: int, classes: int = 10) -> Path:
    """A seeded random uint8 pack (speed does not depend on pixel content)."""
    if not path.exists():
        rng = np.random.default_rng(0)
        with PackWriter(path, count, (size, size, 3), [str(c) for c in range(classes)], 256) as w:
            for start in range(0, count, 256):
                rows = min(256, count - start)
                images = rng.integers(0, 256, (rows, size, size, 3), dtype=np.uint8)
                labels = rng.integers(0, classes, rows)
                w.write(images, labels, [f"{start + i}.png" for i in range(rows)])
    return path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def train_rate(args: argparse.Namespace) -> tuple[float, float]:
    """(images/s, images per CPU-second) of MiniVGGNet training after its first epoch."""
    import functools

    import keras

    from imgclf.data.inputs import PackInfo, training_dataset
    from imgclf.models.architectures import build_architecture
    from imgclf.models.training import compile_classifier, pixel_preprocessing

    info = PackInfo.read(ensure_pack(OUT / f"train-{args.n}.h5", args.n, 32))
    batch, steps = 64, math.ceil(args.n / 64)
    data = functools.partial(training_dataset, info, batch_size=batch, seed=0, crop=(28, 28))
    model = build_architecture(
        "minivggnet",
        (28, 28, 3),
        10,
        l2=0.0005,
        preprocessing=pixel_preprocessing("mean", np.full(3, 127.5)),
    )
    compile_classifier(model, keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True))
    marks: list[tuple[float, float]] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            marks.append((time.perf_counter(), cpu_seconds()))

    model.fit(
        data(), epochs=args.epochs + 1, steps_per_epoch=steps, verbose=0, callbacks=[Clock()]
    )
    (wall_0, cpu_0), (wall_1, cpu_1) = marks[0], marks[-1]
    images = args.epochs * args.n
    return images / (wall_1 - wall_0), images / (cpu_1 - cpu_0)


def features_rate(args: argparse.Namespace, arch: str) -> tuple[float, float]:
    """(images/s, images per CPU-second) of the features stage's code, traced once before."""
    from features import ReusedFunctions, stage_call  # bench/features.py
    from imgclf.models.backbones import build_backbone
    from imgclf.models.features import feature_extractor

    pack = ensure_pack(OUT / f"features-{args.n_features}.h5", args.n_features, 224)
    extractor = feature_extractor(build_backbone(arch, (224, 224, 3), "none"), "avg")
    out = OUT / f"features-{os.getpid()}.h5"
    call = stage_call(extractor, pack, out, 32, False, ReusedFunctions())
    call()  # traces the function that the timed call reuses
    wall, cpu = time.perf_counter(), cpu_seconds()
    call()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    out.unlink()
    return args.n_features / wall, args.n_features / cpu


def child(args: argparse.Namespace) -> None:
    from imgclf.models.runtime import setup

    mode, task = args.child
    setup(0, MODES[mode])
    kind, arch, _ = task.split()
    rate = train_rate(args) if kind == "training" else features_rate(args, arch)
    print("RESULT " + json.dumps(rate))


def measure(args: argparse.Namespace, mode: str, task: str) -> tuple[float, float]:
    command = [sys.executable, __file__, "--child", mode, task, "--n", str(args.n)]
    command += ["--epochs", str(args.epochs), "--n-features", str(args.n_features)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return tuple(json.loads(line.removeprefix("RESULT ")))


def main() -> None:
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args)
        return
    best: dict[tuple[str, str], tuple[float, float]] = {}
    for round_index in range(args.repeat):
        order = list(MODES) if round_index % 2 == 0 else list(MODES)[::-1]
        for task in TASKS:
            for mode in order:
                rate = measure(args, mode, task)
                print(f"round {round_index + 1} {task:32} {mode:13} {rate[0]:8.1f} img/s")
                previous = best.get((task, mode), (0.0, 0.0))
                best[task, mode] = (max(previous[0], rate[0]), max(previous[1], rate[1]))
    print(f"\nbest of {args.repeat} rounds; {os.cpu_count()} logical CPUs")
    print("| task | fast img/s | deterministic img/s | det./fast | det./fast per CPU-s |")
    print("|---|---:|---:|---:|---:|")
    for task in TASKS:
        (fast, fast_cpu), (det, det_cpu) = best[task, "fast"], best[task, "deterministic"]
        print(f"| {task} | {fast:.1f} | {det:.1f} | {det / fast:.2f} | {det_cpu / fast_cpu:.2f} |")


if __name__ == "__main__":
    main()
