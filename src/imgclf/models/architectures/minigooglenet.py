"""MiniGoogLeNet (Practitioner Bundle ch. 11): two-branch inception and downsample modules."""

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

# Each downsample module is a 3×3/2 "valid" conv beside a 3×3/2 "valid" max-pool: 32 → 15 → 7.
SPATIAL_OPS = (SpatialOp(3, 2), SpatialOp(3, 2))
MIN_INPUT_SIDE = min_input_side(SPATIAL_OPS)

# Per stage: the (1×1, 3×3) filters of its inception modules, then its downsample filters.
_STAGES: tuple[tuple[tuple[tuple[int, int], ...], int | None], ...] = (
    (((32, 32), (32, 48)), 80),
    (((112, 48), (96, 64), (80, 80), (48, 96)), 96),
    (((176, 160), (176, 160)), None),
)


def _conv_module(
    x: keras.KerasTensor,
    filters: int,
    kernel: int,
    l2: float,
    *,
    strides: int = 1,
    padding: str = "same",
) -> keras.KerasTensor:
    """CONV → BN → ReLU (here, unlike MiniVGGNet and AlexNet, BN comes before the activation)."""
    x = layers.Conv2D(
        filters, kernel, strides=strides, padding=padding, kernel_regularizer=regularizer(l2)
    )(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _inception_module(
    x: keras.KerasTensor, filters_1x1: int, filters_3x3: int, l2: float
) -> keras.KerasTensor:
    """A 1×1 and a 3×3 conv module side by side, concatenated on the channel axis."""
    branch_1x1 = _conv_module(x, filters_1x1, 1, l2)
    branch_3x3 = _conv_module(x, filters_3x3, 3, l2)
    return layers.Concatenate()([branch_1x1, branch_3x3])


def _downsample_module(x: keras.KerasTensor, filters: int, l2: float) -> keras.KerasTensor:
    """A strided conv beside a max-pool, concatenated: halves the side.

    Erratum E13: the book says the module "keeps the same number of filters at 80", but the pool
    branch passes its input channels through, so the output has `filters` + input channels
    (80 + 80 = 160 after the first one, 96 + 144 = 240 after the second).
    """
    conv = _conv_module(x, filters, 3, l2, strides=2, padding="valid")
    pool = layers.MaxPooling2D(3, strides=2)(x)
    return layers.Concatenate()([conv, pool])


def build_minigooglenet(
    input_shape: tuple[int, int, int],
    classes: int,
    *,
    l2: float = 0.0,
    preprocessing: Sequence[keras.layers.Layer] = (),
) -> keras.Model:
    """MiniGoogLeNet; the book has no weight decay (l2=0); l2 > 0 decays every kernel."""
    inputs, x = model_input(
        "minigooglenet",
        input_shape,
        classes,
        min_side=MIN_INPUT_SIDE,
        l2=l2,
        preprocessing=preprocessing,
    )
    x = _conv_module(x, 96, 3, l2)
    for inceptions, downsample in _STAGES:
        for filters_1x1, filters_3x3 in inceptions:
            x = _inception_module(x, filters_1x1, filters_3x3, l2)
        if downsample is not None:
            x = _downsample_module(x, downsample, l2)
    x = layers.Identity(name=BODY_OUTPUT)(x)
    # The book's AvgPool 7×7 + Flatten is a global average at 32×32 (7×7×336 → 336); pooling
    # globally keeps that meaning for any input size.
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, predictions(x, classes, l2), name="minigooglenet")
