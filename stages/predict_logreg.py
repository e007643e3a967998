"""Stage predict_logreg: class probabilities of the logistic regression for val and test."""

import argparse
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.cpu import pin_threads
from imgclf.core.errors import UserError
from imgclf.core.stage import run_stage
from imgclf.data.hdf5io import SplitPredictions, load_features, save_predictions
from imgclf.models.logistic import load_logreg
from imgclf.models.modelcard import check_classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--model", type=Path, required=True, help="model (.skops)")
    parser.add_argument("--val", type=Path, required=True, help="val features")
    parser.add_argument("--test", type=Path, required=True, help="test features")
    parser.add_argument("--out", type=Path, required=True, help="predictions (.h5)")
    args = parser.parse_args()

    if load_params(args.params).base.deterministic:
        pin_threads()  # the same sums on any core count
    model = load_logreg(args.model)
    splits = {}
    for name, path in (("val", args.val), ("test", args.test)):
        features = load_features(path)
        check_classes(args.model, features.label_names, path)
        if list(model.classes_) != list(range(len(features.label_names))):
            raise UserError(
                f"{args.model}: trained on classes {list(model.classes_)}, "
                f"{path} has {len(features.label_names)}; rerun logreg"
            )
        probabilities = model.predict_proba(features.features)
        splits[name] = SplitPredictions(probabilities, features.labels, features.paths)
    save_predictions(args.out, splits, features.label_names, attrs={"model": str(args.model)})


if __name__ == "__main__":
    run_stage(main)
