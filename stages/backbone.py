"""Stage backbone: the pretrained body for features and fine-tuning, from ImageNet, a
weights file, the pipeline's own pretraining on a source folder, or random (smoke tests)."""

import argparse
import logging
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.provenance import write_provenance
from imgclf.core.stage import run_stage
from imgclf.models.pretraining import make_backbone
from imgclf.models.runtime import setup

log = logging.getLogger("imgclf.backbone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="backbone (.keras)")
    parser.add_argument("--curves", type=Path, required=True, help="pretraining curves (CSV)")
    parser.add_argument(
        "--pretrain-packs", type=Path, required=True, help="folder of the pretraining packs"
    )
    parser.add_argument(
        "--pretrain-splits", type=Path, required=True, help="folder of the pretraining splits"
    )
    parser.add_argument("--provenance", type=Path, required=True, help="where it was made (JSON)")
    args = parser.parse_args()

    params = load_params(args.params)
    setup(params.base.seed, params.base.deterministic)  # first: before TensorFlow runs
    body = make_backbone(params, args.out, args.curves, args.pretrain_packs, args.pretrain_splits)
    write_provenance(args.provenance, params.base.deterministic)
    spec = params.backbone
    shape = body.output_shape[1:]
    log.info(
        "%s backbone (%s weights) saved to %s: output %s", spec.arch, spec.weights, args.out, shape
    )


if __name__ == "__main__":
    run_stage(main)
