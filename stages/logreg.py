"""Stage logreg: logistic regression on the train features, C chosen by grid search."""

import argparse
import logging
import os
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.cpu import pin_threads
from imgclf.core.errors import UserError
from imgclf.core.fileio import write_json
from imgclf.core.stage import run_stage
from imgclf.data.hdf5io import load_features
from imgclf.models.logistic import save_logreg, search_logreg
from imgclf.models.modelcard import ModelCard

log = logging.getLogger("imgclf.logreg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--train", type=Path, required=True, help="train features")
    parser.add_argument("--val", type=Path, required=True, help="val features")
    parser.add_argument("--backbone", type=Path, required=True, help="the features' backbone")
    parser.add_argument("--model", type=Path, required=True, help="model (.skops)")
    parser.add_argument("--search", type=Path, required=True, help="grid search (JSON)")
    args = parser.parse_args()

    params = load_params(args.params)
    if params.base.deterministic:
        pin_threads()  # the same sums on any core count
    train, val = load_features(args.train), load_features(args.val)
    if val.label_names != train.label_names:
        raise UserError(
            f"{args.val}: classes {val.label_names}, but {args.train} has {train.label_names}; "
            "rerun the features stages (dvc repro)"
        )
    settings = params.logreg
    model, summary = search_logreg(
        (train.features, train.labels),
        (val.features, val.labels),
        grid=settings.C,
        select=settings.select,
        folds=settings.folds,
        max_iter=settings.max_iter,
        seed=params.base.seed,
        class_weight=settings.class_weight,
    )
    backbone = ModelCard.read(args.backbone)
    card = ModelCard(
        kind="logreg",
        model="logreg",
        label_names=train.label_names,
        # Relative to the model's folder, so a cloned or moved repository still resolves it.
        backbone=Path(os.path.relpath(args.backbone, args.model.parent)).as_posix(),
        pooling=train.attrs["pooling"],
        interpolation=train.attrs["interpolation"],
        arch=backbone.arch,
        weights=backbone.weights,
        image_size=backbone.image_size,
    )
    save_logreg(model, args.model, card)
    write_json(args.search, summary)
    log.info(
        "grid (%s score by C): %s",
        settings.select,
        ", ".join(f"{row['C']:g}: {row['score']:.4f}" for row in summary["grid"]),
    )
    log.info("best C %g (%s score %.4f)", summary["C"], settings.select, summary["score"])


if __name__ == "__main__":
    run_stage(main)
