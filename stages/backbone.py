"""Stage backbone: the pretrained body for features and fine-tuning, from ImageNet, a
weights file, the pipeline's own pretraining on a source folder, or random (smoke tests)."""

import argparse
import logging
import shutil
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.fileio import atomic_output, remove_stale, write_csv
from imgclf.core.stage import run_stage
from imgclf.models.backbones import build_backbone
from imgclf.models.curves import empty_curves
from imgclf.models.modelcard import ModelCard
from imgclf.models.pretraining import pretrain_backbone
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
    args = parser.parse_args()

    params = load_params(args.params)
    spec = params.backbone
    setup(params.base.seed, params.base.deterministic)  # first: before TensorFlow runs
    size = params.base.image_size
    if spec.weights == "pretrain":
        work = args.out.with_name(args.out.name + ".work")
        body = pretrain_backbone(
            spec.arch,
            size,
            spec.pretrain,
            seed=params.base.seed,
            packs=args.pretrain_packs,
            work=work,
            curves=args.curves,
        )
        shutil.rmtree(work)
    else:
        # Left from a run that pretrained: no stage makes them now (see fileio.remove_stale).
        for folder in (args.pretrain_packs, args.pretrain_splits):
            if removed := remove_stale(folder, keep=()):
                log.info("removed %s from %s: no longer pretraining", ", ".join(removed), folder)
        write_csv(args.curves, empty_curves())  # no pretraining: curves without a row
        body = build_backbone(spec.arch, (*size, 3), spec.weights)
        if spec.weights == "none":
            log.warning("backbone.weights = none: random weights, for smoke tests only")
    with atomic_output(args.out) as temporary:
        body.save(temporary)
        ModelCard(kind="backbone", arch=spec.arch, weights=spec.weights, image_size=size).write(
            temporary
        )
    log.info(
        "%s backbone (%s weights) saved to %s: output %s",
        spec.arch,
        spec.weights,
        args.out,
        body.output_shape[1:],
    )


if __name__ == "__main__":
    run_stage(main)
