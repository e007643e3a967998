"""ResNet with pre-activation bottleneck modules (Practitioner Bundle ch. 12, He et al. 2016)."""

from collections.abc import Sequence
from typing import Literal

import keras
from keras import layers

from imgclf.core.errors import UserError
from imgclf.models.architectures._common import (
    BODY_OUTPUT,
    SpatialOp,
    min_input_side,
    model_input,
    predictions,
    regularizer,
)

Stem = Literal["cifar", "tiny_imagenet"]
STEMS: tuple[str, ...] = ("cifar", "tiny_imagenet")


def spatial_ops(stages: Sequence[int], stem: Stem) -> tuple[SpatialOp, ...]:
    """Layers that shrink the map: the Tiny ImageNet stem's pool, then a 'same' /2 per stage."""
    pool = (SpatialOp(3, 2, 1),) if stem == "tiny_imagenet" else ()
    return pool + (SpatialOp(3, 2, "same"),) * (len(stages) - 1)


# "same" padding never shrinks a side below 1, so any input fits; kept for a uniform API.
MIN_INPUT_SIDE = min_input_side(spatial_ops((3, 3, 3), "cifar"))


def _conv(
    x: keras.KerasTensor, filters: int, kernel: int, l2: float, strides: int = 1
) -> keras.KerasTensor:
    """A bias-free conv: every conv here feeds a BN, whose offset makes a bias redundant."""
    conv = layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_regularizer=regularizer(l2),
    )
    return conv(x)


def _bn_relu(x: keras.KerasTensor, bn: dict[str, float]) -> keras.KerasTensor:
    return layers.Activation("relu")(layers.BatchNormalization(**bn)(x))


def _residual_module(
    x: keras.KerasTensor,
    filters: int,
    strides: int,
    l2: float,
    bn: dict[str, float],
    *,
    project: bool = False,
) -> keras.KerasTensor:
    """(BN → ReLU → CONV) × 3 as 1×1 (K/4), 3×3 (K/4, strided), 1×1 (K), plus the shortcut.

    The projection shortcut (a strided 1×1 conv to K) takes the pre-activated input, as in the
    book; there is no ReLU after the add, so the next module's BN → ReLU sees the raw sum.
    """
    activated = _bn_relu(x, bn)
    y = _conv(activated, filters // 4, 1, l2)
    y = _conv(_bn_relu(y, bn), filters // 4, 3, l2, strides)
    y = _conv(_bn_relu(y, bn), filters, 1, l2)
    shortcut = _conv(activated, filters, 1, l2, strides) if project else x
    return layers.Add()([y, shortcut])


def _stem(
    x: keras.KerasTensor, filters: int, stem: Stem, l2: float, bn: dict[str, float]
) -> keras.KerasTensor:
    """CIFAR: one 3×3 conv. Tiny ImageNet: 5×5 conv → BN → ReLU → pad 1 → 3×3/2 max-pool."""
    if stem == "cifar":
        return _conv(x, filters, 3, l2)
    x = _bn_relu(_conv(x, filters, 5, l2), bn)
    x = layers.ZeroPadding2D(1)(x)
    return layers.MaxPooling2D(3, strides=2)(x)


def _check_shape_args(stages: Sequence[int], filters: Sequence[int], stem: str) -> None:
    if stem not in STEMS:
        raise UserError(f"resnet: unknown stem {stem!r}; choose one of: {', '.join(STEMS)}")
    if not stages or any(depth < 1 for depth in stages):
        raise UserError(f"resnet: stages must be module counts >= 1, got {tuple(stages)}")
    if len(filters) != len(stages) + 1:
        raise UserError(
            f"resnet: filters needs one entry for the stem plus one per stage ({len(stages) + 1}),"
            f" got {tuple(filters)}"
        )
    if any(width < 4 or width % 4 for width in filters[1:]):
        raise UserError(
            f"resnet: stage filters must be multiples of 4 (bottlenecks use K/4), got {filters}"
        )


def build_resnet(
    input_shape: tuple[int, int, int],
    classes: int,
    *,
    l2: float = 0.0,
    preprocessing: Sequence[keras.layers.Layer] = (),
    stages: Sequence[int] = (3, 3, 3),
    filters: Sequence[int] = (16, 16, 32, 64),
    bn_eps: float = 2e-5,
    bn_momentum: float = 0.9,
    stem: Stem = "cifar",
) -> keras.Model:
    """Pre-activation bottleneck ResNet; stage i>0 halves the side, stage i has filters[i + 1].

    The book's CIFAR runs use stages (9, 9, 9) with filters (16, 16, 32, 64) or (64, 64, 128, 256)
    and l2 1e-4 or 5e-4; Tiny ImageNet uses stages (3, 4, 6), filters (64, 128, 256, 512),
    stem "tiny_imagenet". BN uses eps 2e-5 and momentum 0.9 (Keras defaults are 1e-3, 0.99).
    """
    _check_shape_args(stages, filters, stem)
    inputs, x = model_input(
        "resnet",
        input_shape,
        classes,
        min_side=min_input_side(spatial_ops(stages, stem)),
        l2=l2,
        preprocessing=preprocessing,
    )
    bn = {"epsilon": bn_eps, "momentum": bn_momentum}
    x = layers.BatchNormalization(**bn)(x)  # the book normalises the input before the stem
    x = _stem(x, filters[0], stem, l2, bn)
    for index, (depth, width) in enumerate(zip(stages, filters[1:], strict=True)):
        # Erratum E12: the book calls residual_module without reg=, so every module silently
        # used its default 1e-4 and only the stem and the classifier got the requested L2.
        # Passing l2 on makes the requested weight decay reach every conv.
        x = _residual_module(x, width, 1 if index == 0 else 2, l2, bn, project=True)
        for _ in range(depth - 1):
            x = _residual_module(x, width, 1, l2, bn)
    # Pre-activation modules end on a raw sum, so the body ends with the final BN → ReLU.
    x = layers.BatchNormalization(**bn)(x)
    x = layers.Activation("relu", name=BODY_OUTPUT)(x)
    # The book's AvgPool 8×8 + Flatten is a global average at 32×32; global pooling generalises.
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, predictions(x, classes, l2), name="resnet")
