"""Stage ensemble: average the class probabilities of the members named in params (each
scaled by its val-fitted temperature first when `evaluate.calibrate: temperature`)."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.catalogue import predictions_file
from imgclf.core.config import load_params
from imgclf.core.errors import UserError
from imgclf.core.stage import run_stage
from imgclf.data.hdf5io import load_predictions, save_predictions
from imgclf.evaluation.ensembling import average_predictions, remove_dropped_seeds
from imgclf.evaluation.metrics import calibrated

log = logging.getLogger("imgclf.ensemble")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--predictions", type=Path, required=True, help="predictions folder")
    parser.add_argument("--out", type=Path, required=True, help="ensemble predictions (.h5)")
    parser.add_argument("--models", type=Path, required=True, help="the cnn models' folder")
    args = parser.parse_args()

    params = load_params(args.params)
    remove_dropped_seeds(params.cnn.seeds, args.predictions / "cnn", args.models)
    names = params.ensemble_members()
    loaded = [load_predictions(predictions_file(args.predictions, name)) for name in names]
    label_names = loaded[0][1]
    for name, (_, other) in zip(names[1:], loaded[1:], strict=True):
        if other != label_names:
            raise UserError(
                f"ensemble member {name!r} has the classes {other}, but {names[0]!r} has "
                f"{label_names}: rerun their stages on the same packs (dvc repro)"
            )
    members = [splits for splits, _ in loaded]
    if params.evaluate.calibrate == "temperature":
        members = [calibrated(splits) for splits in members]
    averaged = average_predictions(members, names)
    save_predictions(args.out, averaged, label_names, attrs={"members": ",".join(names)})
    for split, predictions in averaged.items():
        accuracy = (predictions.probabilities.argmax(axis=1) == predictions.labels).mean()
        log.info("ensemble of %d: %s accuracy %.4f", len(names), split, accuracy)


if __name__ == "__main__":
    run_stage(main)
