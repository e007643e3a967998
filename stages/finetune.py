"""Stage finetune: a new head on the backbone, warmed up with the body frozen, then the top
layers unfrozen at a low learning rate (book ch. 5, Chollet's recipe)."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.provenance import write_provenance
from imgclf.core.stage import run_stage
from imgclf.models.finetuning import finetune
from imgclf.models.runtime import setup

log = logging.getLogger("imgclf.finetune")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="best-on-val model (.keras)")
    parser.add_argument("--curves", type=Path, required=True, help="folder of curves (CSV)")
    parser.add_argument("--provenance", type=Path, required=True, help="where it was made (JSON)")
    args = parser.parse_args()

    params = load_params(args.params)
    setup(params.base.seed, params.base.deterministic)  # first: before TensorFlow runs anything
    trainable = finetune(params, args.backbone, args.train, args.val, args.model, args.curves)
    write_provenance(args.provenance, params.base.deterministic)
    log.info(
        "phase 2 trained the head and %d backbone layers: %s", len(trainable), ", ".join(trainable)
    )


if __name__ == "__main__":
    run_stage(main)
