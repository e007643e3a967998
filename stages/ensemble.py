"""Stage ensemble: every model's temperature fitted on val (`evaluate.calibrate:
temperature`), and the average of the members' class probabilities, each scaled first."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.catalogue import temperatures_file
from imgclf.core.config import load_params
from imgclf.core.fileio import write_json
from imgclf.core.stage import run_stage
from imgclf.data.hdf5io import save_predictions
from imgclf.evaluation.ensembling import build_ensemble, remove_dropped_seeds

log = logging.getLogger("imgclf.ensemble")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--predictions", type=Path, required=True, help="predictions folder")
    parser.add_argument("--out", type=Path, required=True, help="ensemble predictions (.h5)")
    parser.add_argument("--models", type=Path, required=True, help="the cnn models' folder")
    parser.add_argument("--curves", type=Path, required=True, help="the cnn curves' folder")
    parser.add_argument("--provenance", type=Path, required=True, help="the cnn provenance folder")
    args = parser.parse_args()

    params = load_params(args.params)
    remove_dropped_seeds(
        params.cnn.seeds, args.predictions / "cnn", args.models, args.curves, args.provenance
    )
    ensemble = build_ensemble(params, args.predictions)
    members = params.ensemble_members()
    attrs = {"members": ",".join(members)}
    save_predictions(args.out, ensemble.splits, ensemble.label_names, attrs=attrs)
    write_json(temperatures_file(args.predictions), ensemble.temperatures)
    for split, predictions in ensemble.splits.items():
        accuracy = (predictions.probabilities.argmax(axis=1) == predictions.labels).mean()
        log.info("ensemble of %d: %s accuracy %.4f", len(members), split, accuracy)


if __name__ == "__main__":
    run_stage(main)
