"""AlexNet as in Practitioner Bundle ch. 10: CONV → ReLU → BN, L2 on every kernel, 4096 FCs."""

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

# The "same" 11×11/4 stem and three 3×3/2 "valid" max-pools shrink the map: 227 → 57 → 28 → 13 → 6.
# The pools need at least 3×3 each, so inputs below 57 px cannot reach the head (56 → 14 → 6 → 2).
SPATIAL_OPS = (SpatialOp(11, 4, "same"), SpatialOp(3, 2), SpatialOp(3, 2), SpatialOp(3, 2))
MIN_INPUT_SIDE = min_input_side(SPATIAL_OPS)


def _conv_relu_bn(
    x: keras.KerasTensor, filters: int, kernel: int, l2: float, *, strides: int = 1
) -> keras.KerasTensor:
    """CONV (same padding) → ReLU → BN, the book's order (BN after the activation)."""
    x = layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        activation="relu",
        kernel_regularizer=regularizer(l2),
    )(x)
    return layers.BatchNormalization()(x)


def _dense_relu_bn(x: keras.KerasTensor, units: int, l2: float) -> keras.KerasTensor:
    """FC → ReLU → BN → Dropout 0.5."""
    x = layers.Dense(units, activation="relu", kernel_regularizer=regularizer(l2))(x)
    x = layers.BatchNormalization()(x)
    return layers.Dropout(0.5)(x)


def build_alexnet(
    input_shape: tuple[int, int, int],
    classes: int,
    *,
    l2: float = 0.0,
    preprocessing: Sequence[keras.layers.Layer] = (),
) -> keras.Model:
    """AlexNet (the book trains it at 227×227 with l2=0.0002); needs inputs of >= 57 px."""
    inputs, x = model_input(
        "alexnet",
        input_shape,
        classes,
        min_side=MIN_INPUT_SIDE,
        l2=l2,
        preprocessing=preprocessing,
    )
    x = _conv_relu_bn(x, 96, 11, l2, strides=4)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = layers.Dropout(0.25)(x)
    x = _conv_relu_bn(x, 256, 5, l2)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = layers.Dropout(0.25)(x)
    for filters in (384, 384, 256):
        x = _conv_relu_bn(x, filters, 3, l2)
    x = layers.MaxPooling2D(3, strides=2, name=BODY_OUTPUT)(x)
    # As in MiniVGGNet, the last block's dropout belongs to the head, not to the backbone.
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = _dense_relu_bn(x, 4096, l2)
    x = _dense_relu_bn(x, 4096, l2)
    return keras.Model(inputs, predictions(x, classes, l2), name="alexnet")
