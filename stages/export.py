"""Stage export: the model chosen on val (or export.model) as a SavedModel taking image bytes
and LiteRT float32/int8 files, with their predictions on the val and test packs."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.catalogue import model_file, predictions_file
from imgclf.core.config import load_params
from imgclf.core.fileio import atomic_output, write_json
from imgclf.core.stage import run_stage
from imgclf.data.hdf5io import PackReader, save_predictions
from imgclf.evaluation.ensembling import remove_dropped_seeds
from imgclf.evaluation.exportfidelity import model_to_export
from imgclf.models.modelcard import check_classes
from imgclf.models.runtime import setup
from imgclf.serving.classifier import load_classifier
from imgclf.serving.exportedmodels import export_predictors, predict_exported_pack
from imgclf.serving.exporting import (
    calibration_sample,
    export_digests,
    serving_model,
    write_export,
)

log = logging.getLogger("imgclf.export")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--predictions", type=Path, required=True, help="predictions folder")
    parser.add_argument("--models", type=Path, required=True, help="models folder")
    parser.add_argument("--train", type=Path, required=True, help="train pack (int8 calibration)")
    parser.add_argument("--val", type=Path, required=True, help="val pack")
    parser.add_argument("--test", type=Path, required=True, help="test pack")
    parser.add_argument("--out", type=Path, required=True, help="export folder")
    parser.add_argument("--out-predictions", type=Path, required=True, help="exports' predictions")
    parser.add_argument("--summary", type=Path, required=True, help="what was exported (JSON)")
    args = parser.parse_args()

    params = load_params(args.params)
    setup(0, params.base.deterministic)  # first: before TensorFlow runs anything
    remove_dropped_seeds(params.cnn.seeds, args.predictions / "cnn", args.models / "cnn")
    name, chosen_by = model_to_export(params, args.predictions)
    path = model_file(args.models, name)
    for pack in (args.train, args.val, args.test):
        with PackReader(pack) as reader:
            check_classes(path, reader.label_names, pack)
    classifier = load_classifier(path)
    with PackReader(args.train) as reader:
        rows = calibration_sample(params.export.calibration_images, len(reader), params.base.seed)
        calibration = reader.images[rows].astype("float32")
    with atomic_output(args.out) as folder:
        sizes = write_export(serving_model(classifier), folder, calibration, name)
    for export, (predict, encode) in export_predictors(args.out).items():
        splits = {
            split: predict_exported_pack(predict, pack, params.predict.batch_size, encode)
            for split, pack in (("val", args.val), ("test", args.test))
        }
        attrs = {"source": name, "export": export}
        save_predictions(
            predictions_file(args.out_predictions, export), splits, classifier.label_names, attrs
        )
        accuracy = (splits["test"].probabilities.argmax(1) == splits["test"].labels).mean()
        log.info("%s of %s: %d bytes, test accuracy %.4f", export, name, sizes[export], accuracy)
    write_json(
        args.summary,
        {
            "model": name,
            "chosen_by": chosen_by,
            "bytes": sizes,
            "md5": export_digests(args.out),
        },
    )


if __name__ == "__main__":
    run_stage(main)
