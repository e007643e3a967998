"""Stage cnn: train one from-scratch CNN (an ensemble member) on the packs, resumably."""

import argparse
import dataclasses
import functools
import logging
import math
from pathlib import Path

import _workspace  # noqa: F401  (first: this checkout's library, see _workspace.py)
from imgclf.core.catalogue import cnn_name
from imgclf.core.config import load_params
from imgclf.core.stage import run_stage
from imgclf.data.inputs import PackInfo, build_augmentation, evaluation_dataset, training_dataset
from imgclf.data.means import load_means
from imgclf.models.architectures import build_architecture
from imgclf.models.distributed import fit_with_strategy, global_batch_size, make_strategy
from imgclf.models.modelcard import ModelCard
from imgclf.models.runtime import setup
from imgclf.models.training import (
    RunPaths,
    build_optimizer,
    class_weights,
    compile_classifier,
    fingerprint,
    pixel_preprocessing,
)

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
    args = parser.parse_args()

    params = load_params(args.params)
    cnn = params.cnn
    setup(args.seed, params.base.deterministic)  # first: before TensorFlow runs anything
    strategy = make_strategy(params.train.strategy)
    train, val = PackInfo.read(args.train), PackInfo.read(args.val)
    batch = global_batch_size(cnn.batch_size, strategy)
    cache = args.train.stat().st_size <= cnn.cache_mb * 2**20
    augmentation = build_augmentation(**dataclasses.asdict(cnn.augment), seed=args.seed)
    train_data = functools.partial(
        training_dataset,
        train,
        batch_size=batch,
        seed=args.seed,
        crop=cnn.crop,
        augmentation=augmentation,
        cache=cache,
    )
    val_data = evaluation_dataset(val, batch_size=batch, crop=cnn.crop)
    steps = math.ceil(train.count / batch)

    with strategy.scope():
        preprocessing = pixel_preprocessing(cnn.preprocessing, load_means(args.means))
        model = build_architecture(
            cnn.arch,
            (*cnn.crop, 3),
            len(train.label_names),
            l2=cnn.l2,
            preprocessing=preprocessing,
        )
        compile_classifier(model, build_optimizer(cnn.optimizer, cnn.schedule, steps, cnn.epochs))
    # Every cnn key but the seed list: adding a seed must not restart the others' runs.
    settings = {
        **{
            key.name: getattr(cnn, key.name)
            for key in dataclasses.fields(cnn)
            if key.name != "seeds"
        },
        "seed": args.seed,
        "deterministic": params.base.deterministic,
        "strategy": params.train.strategy,
    }
    run_id = fingerprint(settings, [args.train, args.val, args.means])
    trained = fit_with_strategy(
        strategy,
        model,
        train_data,
        val_data,
        epochs=cnn.epochs,
        steps_per_epoch=steps,
        paths=RunPaths(args.model, args.curves),
        run_id=run_id,
        class_weight=class_weights(cnn.class_weight, args.train),
        card=ModelCard(
            kind="keras",
            model=cnn_name(args.seed),
            arch=cnn.arch,
            label_names=train.label_names,
            image_size=train.image_shape[:2],
            input_size=cnn.crop,
            interpolation=train.interpolation,
        ),
    )
    log.info("trained %d epochs (of %d); best model in %s", trained, cnn.epochs, args.model)


if __name__ == "__main__":
    run_stage(main)
