"""Stage export: the model evaluate chose for export (export_choice.json) as a SavedModel
taking image bytes and LiteRT float32/int8 files (their predictions: stage predict_export)."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.catalogue import model_file
from imgclf.core.config import load_params
from imgclf.core.fileio import atomic_output, read_json, write_json
from imgclf.core.provenance import write_provenance
from imgclf.core.stage import run_stage
from imgclf.data.hdf5io import PackReader
from imgclf.models.modelcard import check_classes
from imgclf.models.runtime import setup
from imgclf.serving.classifier import Classifier, load_classifier
from imgclf.serving.exporting import (
    calibration_images,
    export_digests,
    serving_model,
    write_export,
)

log = logging.getLogger("imgclf.export")


def load_checked(path: Path, packs: list[Path]) -> Classifier:
    """The model at `path`, once its classes are checked to be every pack's."""
    for pack in packs:
        with PackReader(pack) as reader:
            check_classes(path, reader.label_names, pack)
    return load_classifier(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--choice", type=Path, required=True, help="evaluate's export choice")
    parser.add_argument("--models", type=Path, required=True, help="models folder")
    parser.add_argument("--train", type=Path, required=True, help="train pack (int8 calibration)")
    parser.add_argument("--val", type=Path, required=True, help="val pack (classes checked)")
    parser.add_argument("--test", type=Path, required=True, help="test pack (classes checked)")
    parser.add_argument("--out", type=Path, required=True, help="export folder")
    parser.add_argument("--summary", type=Path, required=True, help="what was exported (JSON)")
    parser.add_argument("--provenance", type=Path, required=True, help="where it was made (JSON)")
    args = parser.parse_args()

    params = load_params(args.params)
    setup(0, params.base.deterministic)  # first: before TensorFlow runs anything
    choice = read_json(args.choice)
    name = choice["model"]
    classifier = load_checked(model_file(args.models, name), [args.train, args.val, args.test])
    calibration = calibration_images(
        args.train, params.export.calibration_images, params.base.seed
    )
    with atomic_output(args.out) as folder:
        sizes = write_export(serving_model(classifier), folder, calibration, name)
    for export, size in sizes.items():
        log.info("%s of %s: %d bytes", export, name, size)
    write_provenance(args.provenance, params.base.deterministic)
    write_json(
        args.summary,
        {
            "model": name,
            "chosen_by": choice["chosen_by"],
            "bytes": sizes,
            "md5": export_digests(args.out),
        },
    )


if __name__ == "__main__":
    run_stage(main)
