"""Classify image files with the model the pipeline chose, or any model it trained.

    python -m imgclf.classify [--model models/finetune.keras] [--crops 1|10]
        [--temperature T] [--top-k 5] [--csv out.csv] [--batch-size 64] [--fast]
        PATH_OR_FOLDER ...

Without `--model`, it uses the model the evaluate stage chose on val
(`metrics/evaluation/summary.json`, run from the project's folder), with the crops it was
evaluated with and its temperature when `evaluate.calibrate: temperature` fitted one, so the
probabilities are the ones the report measured. Any cnn, finetune or logreg model works with
`--model` (centre crop and no temperature unless given): see `imgclf.serving.classifier` for
how each is loaded and how images are prepared exactly as the pack stage prepared them.
The export stage's files work too: `--model models/export/saved_model` sends each file's
bytes to the SavedModel, which decodes and prepares them in its graph; `--model
models/export/int8.tflite` (or float32) runs the LiteRT interpreter on images prepared here.
An export is one centre crop: `--crops 10` is refused.
It runs the pipeline's deterministic kernels (`imgclf.models.runtime`), so the probabilities
are the same on any machine; `--fast` runs the CPU's fastest ones instead.

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
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from imgclf.core.catalogue import metrics_file, model_file
from imgclf.core.errors import UserError
from imgclf.core.fileio import atomic_output, read_json
from imgclf.core.stage import run_stage
from imgclf.evaluation.calibration import apply_temperature
from imgclf.models.runtime import setup
from imgclf.serving.classifier import classify_paths, load_classifier
from imgclf.serving.exportedmodels import (
    SavedModelRunner,
    classify_files,
    is_export,
    tflite_classifier,
)

# Per-image errors then read `imgclf: error: <path>: <reason>`, like run_stage's one line.
log = logging.getLogger("imgclf")
CSV_COLUMNS = ("path", "rank", "label", "probability")


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
        yield folder  # classify_paths reports it, as any other unusable path
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path)
        else:  # symbolic links to folders included: classify_paths says they are not followed
            yield entry.path


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


@dataclass(frozen=True)
class Choice:
    """Which model file to run, on how many crops, with which temperature."""

    model: Path
    crops: int
    temperature: float


def chosen_model(summary: Path, models: Path, metrics: Path) -> Choice:
    """The model the evaluate stage chose on val, the crops it was evaluated with (10 when
    its metrics have centre-crop keys beside them) and its fitted temperature (or 1)."""
    if not summary.is_file():
        raise UserError(
            f"{summary}: no chosen model (run dvc repro in the project first), or pass --model"
        )
    name = read_json(summary).get("chosen")
    if not isinstance(name, str):
        raise UserError(f"{summary}: names no chosen model; rerun the evaluate stage")
    if name == "ensemble":
        raise UserError(
            f"{summary}: the chosen model is the ensemble, which is several models; "
            "pass --model with one of its members"
        )
    values = read_json(metrics_file(metrics, name))
    return Choice(
        model_file(models, name),
        10 if "test_1crop.accuracy" in values else 1,
        float(values.get("temperature", 1.0)),
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def build_parser(prog: str = "python -m imgclf.classify") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--model",
        type=Path,
        help=".keras, .skops, SavedModel folder or .tflite; default: the one chosen on val",
    )
    parser.add_argument(
        "--crops",
        type=int,
        choices=(1, 10),
        help="centre crop, or the mean of ten crops (Keras models); default: as evaluated",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        help="divide log-probabilities by this (1: none); default: the fitted one, if any",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        default=Path("metrics/evaluation/summary.json"),
        help="where the evaluate stage named the chosen model",
    )
    parser.add_argument("--top-k", type=_positive, default=5, help="classes per image")
    parser.add_argument("--csv", type=Path, help="write path,rank,label,probability here")
    parser.add_argument("--batch-size", type=_positive, default=64, help="images per batch")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="the CPU's fastest kernels; by default the pipeline's deterministic ones, so the "
        "probabilities are the same on any machine",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH_OR_FOLDER")
    return parser


def _run(argv: Sequence[str] | None, prog: str) -> None:
    args = build_parser(prog).parse_args(argv)
    if args.model is None:
        choice = chosen_model(args.summary, Path("models"), args.summary.parent / "models")
        logging.getLogger("imgclf.classify").info(
            "the chosen model: %s, %d crop(s), temperature %g",
            choice.model,
            choice.crops,
            choice.temperature,
        )
    else:
        choice = Choice(args.model, 1, 1.0)
    crops = args.crops or choice.crops
    temperature = args.temperature if args.temperature is not None else choice.temperature
    if temperature <= 0:
        raise UserError(f"--temperature {temperature}: expected a positive number")
    setup(0, deterministic=not args.fast)
    results, label_names = _classify(choice.model, iter_inputs(args.paths), args.batch_size, crops)
    if temperature != 1.0:
        results = (
            (path, apply_temperature(result[None], temperature)[0])
            if isinstance(result, np.ndarray)
            else (path, result)
            for path, result in results
        )
    if args.csv is None:
        _, failed = write_results(results, label_names, args.top_k, sys.stdout)
    else:
        with (
            atomic_output(args.csv) as temporary,
            temporary.open("w", encoding="utf-8", newline="") as out,
        ):
            done, failed = write_results(results, label_names, args.top_k, out, as_csv=True)
        logging.getLogger("imgclf.classify").info(
            "%d images classified, %d failed: %s", done, failed, args.csv
        )
    if failed:
        sys.exit(1)


def _classify(
    model: Path, paths: Iterable[str], batch_size: int, crops: int
) -> tuple[Iterator[tuple[str, np.ndarray | str]], tuple[str, ...]]:
    """(path, probabilities or why it failed) for every path, and the class names."""
    if not is_export(model):
        classifier = load_classifier(model)
        return classify_paths(classifier, paths, batch_size, crops), classifier.label_names
    if crops != 1:
        raise UserError(f"{model}: an export is one centre crop; --crops 10 needs its source")
    if model.suffix == ".tflite":
        classifier = tflite_classifier(model)
        return classify_paths(classifier, paths, batch_size), classifier.label_names
    runner = SavedModelRunner(model)
    return classify_files(runner, paths, batch_size), runner.label_names


def main(argv: Sequence[str] | None = None, prog: str = "python -m imgclf.classify") -> None:
    """The command line; exits 1 on a bad model or if any image failed."""
    run_stage(functools.partial(_run, argv, prog))


if __name__ == "__main__":
    main()
