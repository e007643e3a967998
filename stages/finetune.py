"""Stage finetune: a new head on the backbone, warmed up with the body frozen, then the top
layers unfrozen at a low learning rate (book ch. 5, Chollet's recipe)."""

import argparse
import dataclasses
import logging
import math
from pathlib import Path

from imgclf.cli import run_stage
from imgclf.config import ScheduleParams, load_params
from imgclf.finetuning import build_finetune_model, freeze_backbone, unfreeze_top
from imgclf.inputs import PackInfo, build_augmentation, evaluation_dataset, training_dataset
from imgclf.modelmeta import read_metadata
from imgclf.predicting import load_keras_model
from imgclf.training import (
    RunPaths,
    build_optimizer,
    compile_classifier,
    fingerprint,
    fit_resumable,
    set_seed,
)

log = logging.getLogger("imgclf.finetune")
CONSTANT = ScheduleParams(name="constant", power=1.0, factor=1.0, every=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--backbone", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="best-on-val model (.keras)")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive folder (curves)")
    args = parser.parse_args()

    params = load_params(args.params)
    tune = params.finetune
    set_seed(params.base.seed, params.base.deterministic)
    train, val = PackInfo.read(args.train), PackInfo.read(args.val)
    augmentation = build_augmentation(**dataclasses.asdict(tune.augment), seed=params.base.seed)
    train_data = training_dataset(
        train,
        batch_size=tune.batch_size,
        seed=params.base.seed,
        crop=train.image_shape[:2],
        augmentation=augmentation,
    )
    val_data = evaluation_dataset(val, batch_size=tune.batch_size)
    steps = math.ceil(train.count / tune.batch_size)
    run_id = fingerprint(
        {**dataclasses.asdict(tune), "seed": params.base.seed},
        [args.backbone, args.train, args.val],
    )

    backbone_metadata = {
        key: value
        for key, value in read_metadata(args.backbone).items()
        if key in ("arch", "weights")
    }
    model = build_finetune_model(
        load_keras_model(args.backbone),
        len(train.label_names),
        pooling=tune.pooling,
        hidden=tune.hidden,
        dropout=tune.dropout,
    )
    freeze_backbone(model)
    compile_classifier(
        model, build_optimizer(tune.warmup_optimizer, CONSTANT, steps, tune.warmup_epochs)
    )
    warmup = args.model.with_name(args.model.stem + ".warmup.keras")
    fit_resumable(
        model,
        train_data,
        val_data,
        epochs=tune.warmup_epochs,
        steps_per_epoch=steps,
        paths=RunPaths(warmup, args.live / "warmup"),
        run_id=run_id,
    )

    model = load_keras_model(warmup)  # the best warm-up epoch, not the last
    trainable = unfreeze_top(model, tune.unfreeze)
    log.info(
        "phase 2 trains the head and %d backbone layers: %s", len(trainable), ", ".join(trainable)
    )
    compile_classifier(model, build_optimizer(tune.optimizer, CONSTANT, steps, tune.epochs))
    fit_resumable(
        model,
        train_data,
        val_data,
        epochs=tune.epochs,
        steps_per_epoch=steps,
        paths=RunPaths(args.model, args.live / "finetune"),
        run_id=run_id,
        metadata={
            "kind": "keras",
            "model": "finetune",
            "label_names": list(train.label_names),
            "image_size": list(train.image_shape[:2]),
            "input_size": list(train.image_shape[:2]),
            "interpolation": train.interpolation,
            **backbone_metadata,
        },
    )
    warmup.unlink()


if __name__ == "__main__":
    run_stage(main)
