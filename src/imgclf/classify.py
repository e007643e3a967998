"""Classify image files with any model the pipeline trained.

    python -m imgclf.classify --model models/finetune.keras [--top-k 5] [--csv out.csv]
        [--batch-size 64] PATH_OR_FOLDER ...

Keras classifiers (`cnn` seeds, `finetune`) run as they are; a logistic regression (`.skops`)
runs on the pooled features of the backbone its metadata names. Every image is prepared as
the pack stage prepared the training images (same decoding, JPEG reduced decoding included,
same aspect-aware resize, then the evaluation centre crop), with every size read from the
metadata stored inside the model file (see `imgclf.modelmeta`), so it cannot drift.

Folders are walked recursively, names sorted at every level, hidden files and folders
skipped. Each image prints `path<TAB>label (0.913), label2 (0.051), ...` (its top k classes),
or with `--csv` becomes k rows `path,rank,label,probability` of a CSV file written atomically.
A file that cannot be read prints `imgclf: error: <path>: <reason>` on stderr and the others
go on; the exit code is 1 if any input failed. Images are decoded one batch at a time, so
memory is bounded by `--batch-size`.
"""

import argparse
import csv
import functools
import itertools
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from imgclf.cli import run_stage
from imgclf.errors import UserError
from imgclf.features import feature_extractor
from imgclf.fileio import atomic_output
from imgclf.imaging import INTERPOLATIONS, ImageError, load_like_pack
from imgclf.inputs import centre_crop
from imgclf.logistic import load_logreg
from imgclf.modelmeta import read_metadata
from imgclf.predicting import load_keras_model

# Per-image errors then read `imgclf: error: <path>: <reason>`, like run_stage's one line.
log = logging.getLogger("imgclf")
CSV_COLUMNS = ("path", "rank", "label", "probability")


@dataclass(frozen=True)
class Classifier:
    """A loaded model and the shape of what it takes, from the model file's metadata."""

    label_names: tuple[str, ...]
    image_size: tuple[int, int]  # the packed size (h, w): aspect-aware resize to this
    input_size: tuple[int, int]  # the model input (h, w): centre crop of the packed image
    interpolation: str
    predict: Callable[[np.ndarray], np.ndarray]  # float32 (B, h, w, 3) RGB 0–255 → (B, classes)


def load_classifier(path: Path | str) -> Classifier:
    """A Keras classifier or a logistic regression (through its backbone) the pipeline wrote."""
    path = Path(path)
    metadata = read_metadata(path)
    kind = metadata.get("kind")
    if kind == "keras":
        return _keras_classifier(path, metadata)
    if kind == "logreg":
        return _logreg_classifier(path, metadata)
    raise UserError(
        f"{path}: a model of kind {kind!r} does not classify images; "
        "use a cnn, finetune or logreg model"
    )


def _keras_classifier(path: Path, metadata: dict[str, Any]) -> Classifier:
    model = load_keras_model(path)
    labels = tuple(_field(path, metadata, "label_names"))
    image_size = _size(path, metadata, "image_size")
    input_size = _size(path, metadata, "input_size")
    if input_size[0] > image_size[0] or input_size[1] > image_size[1]:
        raise UserError(
            f"{path}: metadata input_size {input_size} exceeds image_size {image_size}"
        )
    if tuple(model.input_shape[1:3]) != input_size or model.output_shape[-1] != len(labels):
        raise UserError(
            f"{path}: the model takes {model.input_shape[1:3]} and predicts "
            f"{model.output_shape[-1]} classes, its metadata says {input_size} and {len(labels)}"
        )
    return Classifier(
        labels, image_size, input_size, _interpolation(path, metadata), model.predict_on_batch
    )


def _logreg_classifier(path: Path, metadata: dict[str, Any]) -> Classifier:
    model = load_logreg(path)
    labels = tuple(_field(path, metadata, "label_names"))
    image_size = _size(path, metadata, "image_size")
    relative = _field(path, metadata, "backbone")
    # The logreg stage wrote os.path.relpath(backbone, model folder); normpath undoes it.
    backbone_path = Path(os.path.normpath(path.parent / relative))
    if not backbone_path.is_file():
        raise UserError(
            f"{path}: its backbone {backbone_path} is missing "
            f"(stored as {relative!r}, relative to the model's folder)"
        )
    pooling = _field(path, metadata, "pooling")
    if pooling not in ("avg", "max", "flatten"):
        raise UserError(f"{path}: metadata pooling = {pooling!r}; expected avg, max or flatten")
    extractor = feature_extractor(load_keras_model(backbone_path), pooling)
    if tuple(extractor.input_shape[1:3]) != image_size:
        raise UserError(
            f"{backbone_path}: takes {extractor.input_shape[1:3]} images, "
            f"{path} was trained on {image_size}"
        )
    if list(model.classes_) != list(range(len(labels))):
        raise UserError(f"{path}: classes {list(model.classes_)} do not match {len(labels)} names")

    def predict(images: np.ndarray) -> np.ndarray:
        return model.predict_proba(extractor.predict_on_batch(images))

    # The features stage pools the whole packed image: no crop.
    return Classifier(labels, image_size, image_size, _interpolation(path, metadata), predict)


def _field(path: Path, metadata: dict[str, Any], key: str) -> Any:
    if key not in metadata:
        raise UserError(f"{path}: its metadata has no {key!r}; rerun the stage that wrote it")
    return metadata[key]


def _size(path: Path, metadata: dict[str, Any], key: str) -> tuple[int, int]:
    value = _field(path, metadata, key)
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(side, int) and side > 0 for side in value)
    ):
        raise UserError(f"{path}: metadata {key} = {value!r}; expected [height, width]")
    return value[0], value[1]


def _interpolation(path: Path, metadata: dict[str, Any]) -> str:
    # Stages that do not record pack.interpolation packed with the pipeline default, area.
    value = metadata.get("interpolation", "area")
    if value not in INTERPOLATIONS:
        raise UserError(
            f"{path}: metadata interpolation = {value!r}; expected area, linear or cubic"
        )
    return value


def iter_inputs(arguments: Iterable[str]) -> Iterator[str]:
    """Every file named, and every non-hidden file under every folder named, in order."""
    for argument in arguments:
        if os.path.isdir(argument):
            yield from _walk(argument)
        else:
            yield argument


def _walk(folder: str) -> Iterator[str]:
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        yield folder  # load_packed reports it, as any other unusable path
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path)
        else:  # symbolic links to folders included: load_packed says they are not followed
            yield entry.path


def load_packed(path: str, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """`path` as the pack stage stores it: (*size, 3) RGB uint8, or an ImageError."""
    if os.path.isdir(path):  # only folders _walk does not enter reach here
        linked = os.path.islink(path)
        raise ImageError(
            "symbolic link to a folder (not followed)" if linked else "folder cannot be listed"
        )
    if not os.path.isfile(path):
        if os.path.exists(path):
            raise ImageError("not a regular file")
        raise ImageError("broken symbolic link" if os.path.islink(path) else "file not found")
    return load_like_pack(path, size, interpolation)


def classify_paths(
    classifier: Classifier, paths: Iterable[str], batch_size: int
) -> Iterator[tuple[str, np.ndarray | str]]:
    """(path, class probabilities or why it failed) for every path, in order, batch by batch."""
    remaining = iter(paths)
    while batch := list(itertools.islice(remaining, batch_size)):
        loaded: list[np.ndarray | str] = []
        for path in batch:
            try:
                packed = load_packed(path, classifier.image_size, classifier.interpolation)
                loaded.append(centre_crop(packed, classifier.input_size))
            except ImageError as error:
                loaded.append(str(error))
        images = [item for item in loaded if isinstance(item, np.ndarray)]
        outputs = iter(classifier.predict(np.stack(images).astype(np.float32)) if images else ())
        for path, item in zip(batch, loaded, strict=True):
            yield path, next(outputs) if isinstance(item, np.ndarray) else item


def top_k(
    probabilities: np.ndarray, label_names: Sequence[str], k: int
) -> list[tuple[str, float]]:
    """The `k` most probable (label, probability), most probable first; ties by class order."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(label_names[index], float(probabilities[index])) for index in order]


def write_results(
    results: Iterable[tuple[str, np.ndarray | str]],
    label_names: Sequence[str],
    k: int,
    out: TextIO,
    as_csv: bool = False,
) -> tuple[int, int]:
    """Write each result as a text line or as CSV rows, log each failure; (done, failed)."""
    writer = csv.writer(out, lineterminator="\n") if as_csv else None
    if writer:
        writer.writerow(CSV_COLUMNS)
    done = failed = 0
    for path, result in results:
        if isinstance(result, str):
            log.error("error: %s: %s", path, result)
            failed += 1
            continue
        ranked = top_k(result, label_names, k)
        if writer:
            writer.writerows(
                (path, rank, label, f"{probability:.6f}")
                for rank, (label, probability) in enumerate(ranked, start=1)
            )
        else:
            labels = ", ".join(f"{label} ({probability:.3f})" for label, probability in ranked)
            print(f"{path}\t{labels}", file=out, flush=True)
        done += 1
    return done, failed


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m imgclf.classify",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--model", type=Path, required=True, help=".keras or .skops model")
    parser.add_argument("--top-k", type=_positive, default=5, help="classes per image")
    parser.add_argument("--csv", type=Path, help="write path,rank,label,probability here")
    parser.add_argument("--batch-size", type=_positive, default=64, help="images per batch")
    parser.add_argument("paths", nargs="+", metavar="PATH_OR_FOLDER")
    return parser


def _run(argv: Sequence[str] | None) -> None:
    args = build_parser().parse_args(argv)
    classifier = load_classifier(args.model)
    results = classify_paths(classifier, iter_inputs(args.paths), args.batch_size)
    if args.csv is None:
        _, failed = write_results(results, classifier.label_names, args.top_k, sys.stdout)
    else:
        with (
            atomic_output(args.csv) as temporary,
            temporary.open("w", encoding="utf-8", newline="") as out,
        ):
            done, failed = write_results(
                results, classifier.label_names, args.top_k, out, as_csv=True
            )
        logging.getLogger("imgclf.classify").info(
            "%d images classified, %d failed: %s", done, failed, args.csv
        )
    if failed:
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line; exits 1 on a bad model or if any image failed."""
    run_stage(functools.partial(_run, argv))


if __name__ == "__main__":
    main()
