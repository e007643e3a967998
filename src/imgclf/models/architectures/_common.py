"""Pieces every from-scratch architecture shares: input checks, size arithmetic and the head."""

import math
from collections.abc import Sequence
from typing import NamedTuple

import keras

from imgclf.core.errors import UserError

BODY_OUTPUT = "body_output"
PREDICTIONS = "predictions"


class SpatialOp(NamedTuple):
    """A layer that shrinks the feature map: window side, stride, padding ("same" or px a side)."""

    kernel: int
    stride: int
    padding: str | int = 0


def output_side(side: int, ops: Sequence[SpatialOp]) -> int:
    """Side of the feature map after `ops`, or 0 once a window no longer fits its input."""
    for op in ops:
        if op.padding == "same":
            side = math.ceil(side / op.stride)
            continue
        padded = side + 2 * int(op.padding)
        if padded < op.kernel:
            return 0
        side = (padded - op.kernel) // op.stride + 1
    return side


def min_input_side(ops: Sequence[SpatialOp]) -> int:
    """Smallest input side that still leaves a 1×1 feature map after `ops`."""
    side = 1
    while output_side(side, ops) < 1:
        side += 1
    return side


def regularizer(l2: float) -> keras.regularizers.Regularizer | None:
    """L2 on a kernel, or none at all when `l2` is 0 (so no zero-valued losses are tracked)."""
    return keras.regularizers.L2(l2) if l2 > 0 else None


def model_input(
    name: str,
    input_shape: tuple[int, int, int],
    classes: int,
    *,
    min_side: int,
    l2: float,
    preprocessing: Sequence[keras.layers.Layer],
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Check the common arguments, then return the model input and the preprocessed tensor."""
    if len(input_shape) != 3 or any(int(size) < 1 for size in input_shape):
        raise UserError(f"{name}: input_shape must be (height, width, channels): {input_shape}")
    height, width, _ = input_shape
    if min(height, width) < min_side:
        raise UserError(
            f"{name} needs inputs of at least {min_side}×{min_side} pixels (its strides and pools"
            f" shrink anything smaller to nothing), got {height}×{width}"
        )
    if classes < 1:
        raise UserError(f"{name}: classes must be at least 1, got {classes}")
    if l2 < 0:
        raise UserError(f"{name}: l2 must be >= 0, got {l2}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for layer in preprocessing:
        x = layer(x)
    return inputs, x


def predictions(x: keras.KerasTensor, classes: int, l2: float) -> keras.KerasTensor:
    """The book's classifier: a softmax Dense over `classes`."""
    dense = keras.layers.Dense(
        classes, activation="softmax", kernel_regularizer=regularizer(l2), name=PREDICTIONS
    )
    return dense(x)
