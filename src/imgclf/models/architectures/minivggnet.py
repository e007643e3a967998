"""MiniVGGNet (Starter Bundle ch. 15): two VGG blocks of 3×3 convs and a 512-unit dense head."""

from collections.abc import Sequence

import keras
from keras import layers

from imgclf.models.architectures._common import (
    BODY_OUTPUT,
    SpatialOp,
    min_input_side,
    model_input,
    predictions,
    regularizer,
)

# The two 2×2 max-pools are the only layers that shrink the feature map.
SPATIAL_OPS = (SpatialOp(2, 2), SpatialOp(2, 2))
MIN_INPUT_SIDE = min_input_side(SPATIAL_OPS)


def _vgg_block(
    x: keras.KerasTensor, filters: int, l2: float, *, name: str | None = None
) -> keras.KerasTensor:
    """(CONV 3×3 → ReLU → BN) × 2 → MaxPool 2×2; the book puts BN after the activation."""
    for _ in range(2):
        x = layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_regularizer=regularizer(l2)
        )(x)
        x = layers.BatchNormalization()(x)
    return layers.MaxPooling2D(2, name=name)(x)


def build_minivggnet(
    input_shape: tuple[int, int, int],
    classes: int,
    *,
    l2: float = 0.0,
    preprocessing: Sequence[keras.layers.Layer] = (),
) -> keras.Model:
    """MiniVGGNet; the book uses no weight decay (l2=0), l2 > 0 decays every conv/dense kernel."""
    inputs, x = model_input(
        "minivggnet",
        input_shape,
        classes,
        min_side=MIN_INPUT_SIDE,
        l2=l2,
        preprocessing=preprocessing,
    )
    x = _vgg_block(x, 32, l2)
    x = layers.Dropout(0.25)(x)
    x = _vgg_block(x, 64, l2, name=BODY_OUTPUT)
    # The last block's dropout counts as head: a backbone cut at body_output sees whole features.
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu", kernel_regularizer=regularizer(l2))(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, predictions(x, classes, l2), name="minivggnet")
