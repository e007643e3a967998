"""Benchmark: what feature extraction in float64 would cost, against the pipeline's float32,
measured in the same run with the same deterministic set-up (`imgclf.models.runtime.setup`).

Why it was tried: the same backbone run in float64 and cast to float32 at the end gave the
same features on four CPU models where float32 did not (docs/reproducibility.md). It is not
the pipeline's mode; this prices it. Each precision builds the same network (random weights:
speed does not depend on them; Keras' `floatx` sets the dtype of every layer), traces it with
a first pass, then times `--repeat` passes over `--n` images and keeps the best. Rows: the
demo's MiniVGGNet body at 32x32 (what the demo's features stage runs) and a MobileNetV2 and a
ResNet50 body at 224x224 (what `backbone.arch` offers for photos). Run from the repository root:

    .venv/bin/python bench/float64_features.py [--n 64] [--repeat 3]
"""

# imgclf first: importing it pins NumPy's and OpenBLAS's kernels before they load.
import imgclf  # noqa: F401

# isort: split
import argparse
import time

import keras
import numpy as np

from imgclf.models.architectures import body_of, build_architecture
from imgclf.models.runtime import setup

NETWORKS = {
    "minivggnet 32x32": (
        32,
        lambda size: body_of(build_architecture("minivggnet", (size, size, 3), 10)),
    ),
    "mobilenet_v2 224x224": (
        224,
        lambda size: keras.applications.MobileNetV2(
            weights=None, include_top=False, pooling="avg", input_shape=(size, size, 3)
        ),
    ),
    "resnet50 224x224": (
        224,
        lambda size: keras.applications.ResNet50(
            weights=None, include_top=False, pooling="avg", input_shape=(size, size, 3)
        ),
    ),
}


def images_per_second(network: str, precision: str, count: int, repeat: int) -> float:
    """The best of `repeat` timed passes, after one that traces the function."""
    size, build = NETWORKS[network]
    keras.config.set_floatx(precision)
    keras.utils.set_random_seed(0)
    model = build(size)
    images = np.random.default_rng(0).random((count, size, size, 3)).astype(precision)
    model.predict(images, batch_size=32, verbose=0)
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        model.predict(images, batch_size=32, verbose=0)
        best = max(best, count / (time.perf_counter() - start))
    keras.config.set_floatx("float32")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="images per timed pass")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per precision")
    args = parser.parse_args()
    setup(0, deterministic=True)
    print("| network | float32 img/s | float64 img/s | float64 / float32 |")
    print("|---|---:|---:|---:|")
    for network in NETWORKS:
        single = images_per_second(network, "float32", args.n, args.repeat)
        double = images_per_second(network, "float64", args.n, args.repeat)
        print(f"| {network} | {single:.1f} | {double:.1f} | {double / single:.2f} |", flush=True)


if __name__ == "__main__":
    main()
