"""Benchmark: per-image latency of the exports in models/export against their source model.

One image at a time (batch 1, what a serving request or a phone does), on the packed test
images of the pipeline (`data/processed/test.h5`), each method warmed up first:

- baseline: the source model as `python -m imgclf.classify` runs it (`Classifier`, Keras
  `predict_on_batch` on the packed image; the OpenCV decode is not timed);
- saved_model: the SavedModel's `serving_default` on the image's PNG bytes (decode and
  preparation in the graph are timed: they are part of what a serving request costs);
- float32 / int8: the LiteRT interpreter (`ai-edge-litert`, one thread) on the packed image.

Methods are interleaved over `--repeat` rounds, every other round in reverse order; the median
per image of each round is kept and the best round reported, with its ratio to the baseline
measured in the same run. The figures, the CPU and the MD5s of the files timed are written to
`bench/results/export.json`, which the report shows beside the exports (only while the MD5s
match the files in models/export). Run from the repository root after `dvc repro`:

    .venv/bin/python bench/export.py [--n 100] [--repeat 5]

Absolute times depend on the machine and on what else runs on it; compare ratios.
"""

# imgclf before anything that loads NumPy: importing it pins NumPy's and OpenBLAS's kernels.
import imgclf  # noqa: F401

# isort: split
import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from imgclf.core.catalogue import model_file
from imgclf.core.fileio import read_json, write_json
from imgclf.data.hdf5io import PackReader
from imgclf.models.runtime import setup
from imgclf.serving.classifier import load_classifier
from imgclf.serving.exportedmodels import encode_png, export_predictors
from imgclf.serving.exporting import export_digests

RESULTS = Path("bench/results/export.json")


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def median_ms(call: Callable[[object], object], inputs: list[object]) -> float:
    times = []
    for item in inputs:
        start = time.perf_counter()
        call(item)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="test images per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds")
    parser.add_argument("--export", type=Path, default=Path("models/export"))
    parser.add_argument("--summary", type=Path, default=Path("metrics/export.json"))
    parser.add_argument("--test", type=Path, default=Path("data/processed/test.h5"))
    args = parser.parse_args()

    setup(0, deterministic=True)  # as classify runs by default
    source = read_json(args.summary)["model"]
    classifier = load_classifier(model_file(Path("models"), source))
    with PackReader(args.test) as reader:
        images = reader.images[: args.n]
    packed = [image[None].astype(np.float32) for image in images]
    encoded = [[encode_png(image)] for image in images]
    calls: dict[str, tuple[Callable[[object], object], list[object]]] = {
        "baseline": (classifier.predict_packed, packed)
    }
    for name, (predict, takes_bytes) in export_predictors(args.export).items():
        calls[name] = (predict, encoded if takes_bytes else packed)
    for call, inputs in calls.values():  # warm-up: tracing, delegate set-up
        call(inputs[0])
    rounds: dict[str, list[float]] = {name: [] for name in calls}
    for round_index in range(args.repeat):
        order = list(calls) if round_index % 2 == 0 else list(reversed(calls))
        for name in order:
            rounds[name].append(median_ms(*calls[name]))
    best = {name: min(values) for name, values in rounds.items()}
    print(f"{source}: median ms per image, best of {args.repeat} rounds of {len(images)}")
    print("| method | ms / image | spread | ratio to baseline |")
    print("|---|---:|---:|---:|")
    for name, values in rounds.items():
        spread = max(values) - min(values)
        ratio = best[name] / best["baseline"]
        print(f"| {name} | {best[name]:.3f} | {spread:.3f} | {ratio:.2f} |")
    write_json(
        RESULTS,
        {
            "model": source,
            "md5": export_digests(args.export),
            "cpu": f"{cpu_name()}, {os.cpu_count()} logical CPUs",
            "how": (
                f"median of {len(images)} single-image calls, best of {args.repeat} rounds; "
                f"the source model through Keras took {best['baseline']:.2f} ms"
            ),
            "per_image_ms": {name: round(value, 3) for name, value in best.items()},
        },
    )
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
