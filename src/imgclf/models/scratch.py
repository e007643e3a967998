"""A CNN trained from scratch on the packs, resumably: the cnn stage's work (one ensemble
member per seed in cnn.seeds)."""

import dataclasses
from pathlib import Path

from imgclf.core.catalogue import cnn_name
from imgclf.core.config import Params
from imgclf.data.means import load_means
from imgclf.models.architectures import build_architecture
from imgclf.models.distributed import fit_with_strategy, run_data
from imgclf.models.modelcard import ModelCard
from imgclf.models.training import (
    RunPaths,
    build_optimizer,
    class_weights,
    compile_classifier,
    fingerprint,
    pixel_preprocessing,
)


def train_from_scratch(
    params: Params, seed: int, train_pack: Path, val_pack: Path, means: Path, paths: RunPaths
) -> int:
    """Train `cnn.arch` with `seed` under `distribute.strategy`, resuming a killed run of the same
    settings and inputs; the best-on-val model, with its card, and the curves go to `paths`.
    Returns the number of epochs trained here."""
    cnn = params.cnn
    cache = train_pack.stat().st_size <= cnn.cache_mb * 2**20
    data = run_data(
        params.distribute.strategy,
        train_pack,
        val_pack,
        per_replica=cnn.batch_size,
        seed=seed,
        crop=cnn.crop,
        augment=cnn.augment,
        cache=cache,
    )
    with data.strategy.scope():
        preprocessing = pixel_preprocessing(cnn.preprocessing, load_means(means))
        model = build_architecture(
            cnn.arch,
            (*cnn.crop, 3),
            len(data.train.label_names),
            l2=cnn.l2,
            preprocessing=preprocessing,
        )
        optimizer = build_optimizer(cnn.optimizer, cnn.schedule, data.steps_per_epoch, cnn.epochs)
        compile_classifier(model, optimizer)
    # Every cnn key but the seed list: adding a seed must not restart the others' runs.
    settings = {
        **{
            key.name: getattr(cnn, key.name)
            for key in dataclasses.fields(cnn)
            if key.name != "seeds"
        },
        "seed": seed,
        "deterministic": params.base.deterministic,
        "strategy": params.distribute.strategy,
    }
    card = ModelCard(
        kind="keras",
        model=cnn_name(seed),
        arch=cnn.arch,
        label_names=data.train.label_names,
        image_size=data.train.image_shape[:2],
        input_size=cnn.crop,
        interpolation=data.train.interpolation,
    )
    return fit_with_strategy(
        data.strategy,
        model,
        data.train_data,
        data.val_data,
        epochs=cnn.epochs,
        steps_per_epoch=data.steps_per_epoch,
        paths=paths,
        run_id=fingerprint(settings, [train_pack, val_pack, means]),
        class_weight=class_weights(cnn.class_weight, train_pack),
        card=card,
        keep_epoch=cnn.keep_epoch,
    )
