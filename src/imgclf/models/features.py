"""Pooled CNN features of a pack (book ch. 3): batched inference through tf.data, written
batch by batch, so memory is bounded by the batch size."""

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import FEATURES, PackReader, PackWriter
from imgclf.data.inputs import PackInfo, evaluation_dataset


def pooling_layer(pooling: str, name: str) -> keras.layers.Layer:
    """Reduce a (H, W, C) map to a vector: average or max per channel, or flatten it all."""
    layers = {
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
        "flatten": keras.layers.Flatten,
    }
    return layers[pooling](name=name)


def feature_extractor(backbone: keras.Model, pooling: str = "avg") -> keras.Model:
    """The backbone (raw RGB in, spatial map out) followed by `pooling`.

    Pooled vectors are what the book's published numbers used (2048-d for ResNet50); its
    ch. 9 code wrote the 7x7x2048 map by mistake. Ch. 3 flattens VGG16's map on purpose.
    """
    inputs = keras.Input(backbone.input_shape[1:], name="image")
    # training=False keeps BatchNormalization in inference mode.
    vectors = pooling_layer(pooling, "features")(backbone(inputs, training=False))
    return keras.Model(inputs, vectors, name=f"{backbone.name}_features")


def extract_features(
    extractor: keras.Model,
    pack: Path | str,
    out: Path | str,
    *,
    batch_size: int,
    jit_compile: bool = False,
    attrs: dict[str, Any] | None = None,
) -> int:
    """Write `extractor`'s vectors for every row of `pack` to `out`; return their number.

    The model is called through one `tf.function` (optionally XLA-compiled): on a CPU that
    is faster than `predict`, which adds per-batch overhead.
    """
    info = PackInfo.read(pack)
    if tuple(extractor.input_shape[1:3]) != info.image_shape[:2]:
        raise UserError(
            f"{pack}: images are {info.image_shape[:2]}, the backbone takes "
            f"{extractor.input_shape[1:3]}"
        )
    call = tf.function(
        lambda images: extractor(images, training=False),
        jit_compile=jit_compile,
        reduce_retracing=True,
    )
    with PackReader(pack) as reader:
        paths, labels = reader.paths, reader.labels
    width = int(extractor.output_shape[-1])
    with PackWriter(
        out,
        info.count,
        (width,),
        info.label_names,
        batch_size,
        attrs,
        key=FEATURES,
        dtype=np.float32,
    ) as writer:
        for images, _ in evaluation_dataset(info, batch_size=batch_size):
            start = writer.written
            vectors = call(images).numpy().astype(np.float32)
            end = start + len(vectors)
            writer.write(vectors, labels[start:end], paths[start:end])
    return info.count
