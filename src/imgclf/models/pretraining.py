"""Pretrain a backbone on a source image folder: the offline stand-in for ImageNet weights.

The source folder is indexed, split and packed by stages of its own (pretrain_index, and pack
on its splits), the same code as the target data's; a classifier of the chosen architecture
is trained on those packs, and its convolutional body is kept.
"""

import dataclasses
import functools
import logging
import math
import shutil
from pathlib import Path

import keras
import numpy as np

from imgclf.core.config import Params, PretrainParams
from imgclf.core.fileio import atomic_output, remove_stale, write_csv
from imgclf.data.inputs import PackInfo, build_augmentation, evaluation_dataset, training_dataset
from imgclf.data.means import channel_means
from imgclf.models.architectures import ARCHITECTURES, body_of, build_architecture
from imgclf.models.backbones import build_backbone
from imgclf.models.curves import empty_curves
from imgclf.models.modelcard import ModelCard
from imgclf.models.training import (
    RunPaths,
    build_optimizer,
    compile_classifier,
    fingerprint,
    fit_resumable,
    pixel_preprocessing,
)


def build_pretraining_model(
    arch: str, size: tuple[int, int], classes: int, l2: float, train_pack: Path
) -> keras.Model:
    """A classifier whose body becomes the backbone: a from-scratch architecture with its own
    head, or a keras.applications body (random init) with a pooled softmax head."""
    shape = (*size, 3)
    if arch in ARCHITECTURES:
        means = channel_means(train_pack)
        preprocessing = pixel_preprocessing("mean", np.asarray(list(means.values())))
        return build_architecture(arch, shape, classes, l2=l2, preprocessing=preprocessing)
    body = build_backbone(arch, shape, "none")
    pooled = keras.layers.GlobalAveragePooling2D()(body.output)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(pooled)
    return keras.Model(body.input, outputs, name=f"{arch}_pretraining")


log = logging.getLogger("imgclf.models.pretraining")


def make_backbone(
    params: Params, out: Path, curves: Path, pretrain_packs: Path, pretrain_splits: Path
) -> keras.Model:
    """The backbone stage's work: `backbone.arch` pretrained on the pretraining packs
    (`weights: pretrain`) or built with its weights, saved to `out` with its card; the
    pretraining curves go to `curves` (no row without pretraining). Returns the body."""
    spec, size = params.backbone, params.base.image_size
    if spec.weights == "pretrain":
        work = out.with_name(out.name + ".work")
        body = pretrain_backbone(
            spec.arch,
            size,
            spec.pretrain,
            seed=params.base.seed,
            packs=pretrain_packs,
            work=work,
            curves=curves,
        )
        shutil.rmtree(work)
    else:
        # Left from a run that pretrained: no stage makes them now (see fileio.remove_stale).
        for folder in (pretrain_packs, pretrain_splits):
            if removed := remove_stale(folder, keep=()):
                log.info("removed %s from %s: no longer pretraining", ", ".join(removed), folder)
        write_csv(curves, empty_curves())
        body = build_backbone(spec.arch, (*size, 3), spec.weights)
        if spec.weights == "none":
            log.warning("backbone.weights = none: random weights, for smoke tests only")
    with atomic_output(out) as temporary:
        body.save(temporary)
        ModelCard(kind="backbone", arch=spec.arch, weights=spec.weights, image_size=size).write(
            temporary
        )
    return body


def pretrain_backbone(
    arch: str,
    size: tuple[int, int],
    params: PretrainParams,
    *,
    seed: int,
    packs: Path,
    work: Path,
    curves: Path,
) -> keras.Model:
    """Train `arch` on the pretraining packs (`packs`/train.h5 and val.h5), resumably, with
    its best model in `work`; return its body."""
    train_pack, val_pack = packs / "train.h5", packs / "val.h5"
    train, val = PackInfo.read(train_pack), PackInfo.read(val_pack)
    model = build_pretraining_model(arch, size, len(train.label_names), params.l2, train_pack)
    steps = math.ceil(train.count / params.batch_size)
    compile_classifier(
        model, build_optimizer(params.optimizer, params.schedule, steps, params.epochs)
    )
    augmentation = build_augmentation(**dataclasses.asdict(params.augment), seed=seed)
    train_data = functools.partial(
        training_dataset,
        train,
        batch_size=params.batch_size,
        seed=seed,
        crop=size,
        augmentation=augmentation,
        cache=True,
    )
    val_data = evaluation_dataset(val, batch_size=params.batch_size)
    best = work / "pretrained.keras"
    settings = {"arch": arch, "size": size, "seed": seed, **dataclasses.asdict(params)}
    run_id = fingerprint(settings, [train_pack, val_pack])
    fit_resumable(
        model,
        train_data,
        val_data,
        epochs=params.epochs,
        steps_per_epoch=steps,
        paths=RunPaths(best, curves),
        run_id=run_id,
    )
    return body_of(keras.models.load_model(best, safe_mode=True))
