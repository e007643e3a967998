"""Stage logreg: logistic regression on the train features, C chosen by grid search."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.cpu import pin_threads
from imgclf.core.fileio import write_json
from imgclf.core.provenance import write_provenance
from imgclf.core.stage import run_stage
from imgclf.models.logistic import train_logreg

log = logging.getLogger("imgclf.logreg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--train", type=Path, required=True, help="train features")
    parser.add_argument("--val", type=Path, required=True, help="val features")
    parser.add_argument("--splits", type=Path, required=True, help="split's CSV (its groups)")
    parser.add_argument("--backbone", type=Path, required=True, help="the features' backbone")
    parser.add_argument("--model", type=Path, required=True, help="model (.skops)")
    parser.add_argument("--search", type=Path, required=True, help="grid search (JSON)")
    parser.add_argument("--provenance", type=Path, required=True, help="where it was made (JSON)")
    args = parser.parse_args()

    params = load_params(args.params)
    if params.base.deterministic:
        pin_threads()  # the same sums on any core count
    summary = train_logreg(params, args.train, args.val, args.backbone, args.model, args.splits)
    write_json(args.search, summary)
    write_provenance(args.provenance, params.base.deterministic)
    select = params.logreg.select
    grid = ", ".join(f"{row['C']:g}: {row['score']:.4f}" for row in summary["grid"])
    log.info("grid (%s score by C): %s", select, grid)
    log.info("best C %g (%s score %.4f)", summary["C"], select, summary["score"])


if __name__ == "__main__":
    run_stage(main)
