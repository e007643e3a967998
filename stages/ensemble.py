"""Stage ensemble: average the class probabilities of the members named in params."""

import argparse
import logging
from pathlib import Path

from imgclf.cli import run_stage
from imgclf.config import load_params
from imgclf.data.hdf5io import load_predictions, save_predictions
from imgclf.evaluation.ensembling import average_predictions

log = logging.getLogger("imgclf.ensemble")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--predictions", type=Path, required=True, help="predictions folder")
    parser.add_argument("--out", type=Path, required=True, help="ensemble predictions (.h5)")
    args = parser.parse_args()

    names = load_params(args.params).ensemble_members()
    loaded = [load_predictions(args.predictions / f"{name}.h5") for name in names]
    label_names = loaded[0][1]
    averaged = average_predictions([splits for splits, _ in loaded], names)
    save_predictions(args.out, averaged, label_names, attrs={"members": ",".join(names)})
    for split, predictions in averaged.items():
        accuracy = (predictions.probabilities.argmax(axis=1) == predictions.labels).mean()
        log.info("ensemble of %d: %s accuracy %.4f", len(names), split, accuracy)


if __name__ == "__main__":
    run_stage(main)
