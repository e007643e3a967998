"""Stage finetune: a new head on the backbone, warmed up with the body frozen, then the top
layers unfrozen at a low learning rate (book ch. 5, Chollet's recipe)."""

import argparse
import dataclasses
import functools
import logging
import math
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.config import load_params
from imgclf.core.stage import run_stage
from imgclf.data.inputs import PackInfo, build_augmentation, evaluation_dataset, training_dataset
from imgclf.models.distributed import global_batch_size, make_strategy
from imgclf.models.finetuning import finetune_two_phases
from imgclf.models.modelcard import ModelCard
from imgclf.models.runtime import setup
from imgclf.models.training import class_weights, fingerprint

log = logging.getLogger("imgclf.finetune")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="best-on-val model (.keras)")
    parser.add_argument("--curves", type=Path, required=True, help="folder of curves (CSV)")
    args = parser.parse_args()

    params = load_params(args.params)
    tune, seed = params.finetune, params.base.seed
    setup(seed, params.base.deterministic)  # first: before TensorFlow runs anything
    strategy = make_strategy(params.train.strategy)
    train, val = PackInfo.read(args.train), PackInfo.read(args.val)
    batch = global_batch_size(tune.batch_size, strategy)
    augmentation = build_augmentation(**dataclasses.asdict(tune.augment), seed=seed)
    train_data = functools.partial(
        training_dataset,
        train,
        batch_size=batch,
        seed=seed,
        crop=train.image_shape[:2],
        augmentation=augmentation,
    )
    val_data = evaluation_dataset(val, batch_size=batch)
    settings = {**dataclasses.asdict(tune), "seed": seed, "strategy": params.train.strategy}
    backbone = ModelCard.read(args.backbone)
    card = ModelCard(
        kind="keras",
        model="finetune",
        label_names=train.label_names,
        image_size=train.image_shape[:2],
        input_size=train.image_shape[:2],
        interpolation=train.interpolation,
        arch=backbone.arch,
        weights=backbone.weights,
    )
    trainable = finetune_two_phases(
        strategy,
        args.backbone,
        train_data,
        val_data,
        tune,
        classes=len(train.label_names),
        steps_per_epoch=math.ceil(train.count / batch),
        model_path=args.model,
        curves=args.curves,
        run_id=fingerprint(settings, [args.backbone, args.train, args.val]),
        card=card,
        class_weight=class_weights(tune.class_weight, args.train),
    )
    log.info(
        "phase 2 trained the head and %d backbone layers: %s", len(trainable), ", ".join(trainable)
    )


if __name__ == "__main__":
    run_stage(main)
