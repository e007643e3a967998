"""Stage cnn: train one from-scratch CNN (an ensemble member) on the packs, resumably."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.provenance import write_provenance
from imgclf.core.stage import run_stage
from imgclf.models.runtime import setup
from imgclf.models.scratch import train_from_scratch
from imgclf.models.training import RunPaths

log = logging.getLogger("imgclf.cnn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seed", type=int, required=True, help="this member's seed")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--means", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="best-on-val model (.keras)")
    parser.add_argument("--curves", type=Path, required=True, help="training curves (CSV)")
    parser.add_argument("--provenance", type=Path, required=True, help="where it was made (JSON)")
    args = parser.parse_args()

    params = load_params(args.params)
    setup(args.seed, params.base.deterministic)  # first: before TensorFlow runs anything
    paths = RunPaths(args.model, args.curves)
    trained = train_from_scratch(params, args.seed, args.train, args.val, args.means, paths)
    write_provenance(args.provenance, params.base.deterministic)
    log.info("trained %d epochs (of %d); best model in %s", trained, params.cnn.epochs, args.model)


if __name__ == "__main__":
    run_stage(main)
