"""Pretrain a backbone on a source image folder: the offline stand-in for ImageNet weights.

The source folder goes through the same index and pack code as the target data, a
classifier of the chosen architecture is trained on it, and its convolutional body is kept.
"""

import dataclasses
import functools
import hashlib
import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from imgclf.config import DataParams, PackParams, PretrainParams
from imgclf.data.indexing import build_index
from imgclf.data.inputs import PackInfo, build_augmentation, evaluation_dataset, training_dataset
from imgclf.data.means import channel_means
from imgclf.data.packing import pack_split
from imgclf.data.parallel import available_cores
from imgclf.models.architectures import ARCHITECTURES, body_of, build_architecture
from imgclf.models.backbones import build_backbone
from imgclf.models.training import (
    RunPaths,
    build_optimizer,
    compile_classifier,
    fingerprint,
    fit_resumable,
    pixel_preprocessing,
)


def pack_source(
    params: PretrainParams, size: tuple[int, int], seed: int, work: Path
) -> tuple[Path, Path, str]:
    """Index the source folder, split off a stratified val set and pack both; return the
    packs and a digest of the split (paths, labels, sizes) that identifies a resumable run."""
    data = DataParams(
        source=params.source,
        labels="folder",
        pattern="(?P<label>.+)",
        manifest="labels.csv",
        max_rejected=1.0,
    )
    manifest = build_index(data, workers=available_cores()).manifest
    train, val = train_test_split(
        manifest, test_size=params.val, random_state=seed, stratify=manifest["label"]
    )
    splits = pd.concat([train.assign(split="train"), val.assign(split="val")])
    packing = PackParams(batch_size=256, interpolation="area")
    packs = work / "train.h5", work / "val.h5"
    for name, path in zip(("train", "val"), packs, strict=True):
        pack_split(splits, name, Path(params.source), path, size, packing, seed, available_cores())
    digest = hashlib.sha256(splits.sort_values("path").to_csv().encode()).hexdigest()
    return *packs, digest


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


def pretrain_backbone(
    arch: str,
    size: tuple[int, int],
    params: PretrainParams,
    *,
    seed: int,
    work: Path,
    curves: Path,
) -> keras.Model:
    """Train `arch` on `params.source` (resumably) and return its body."""
    train_pack, val_pack, digest = pack_source(params, size, seed, work)
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
    settings = {
        "arch": arch,
        "size": size,
        "seed": seed,
        "data": digest,
        **dataclasses.asdict(params),
    }
    run_id = fingerprint(settings, [])
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
