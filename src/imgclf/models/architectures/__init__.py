"""From-scratch CNNs of the Practitioner Bundle as Keras 3 functional models, by name.

Every model takes raw images (after the given preprocessing layers), ends its convolutional
body at a layer named "body_output" and classifies with a softmax Dense named "predictions".
"""

from collections.abc import Callable, Sequence

import keras

from imgclf.core.errors import UserError
from imgclf.models.architectures import alexnet, minigooglenet, minivggnet, resnet
from imgclf.models.architectures._common import BODY_OUTPUT

__all__ = ["ARCHITECTURES", "BODY_OUTPUT", "MIN_INPUT_SIDES", "body_of", "build_architecture"]

ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "minivggnet": minivggnet.build_minivggnet,
    "alexnet": alexnet.build_alexnet,
    "minigooglenet": minigooglenet.build_minigooglenet,
    "resnet": resnet.build_resnet,
}

# Smallest height and width each architecture accepts, so a config loader can reject a too-small
# image size before any data is read.
MIN_INPUT_SIDES: dict[str, int] = {
    "minivggnet": minivggnet.MIN_INPUT_SIDE,
    "alexnet": alexnet.MIN_INPUT_SIDE,
    "minigooglenet": minigooglenet.MIN_INPUT_SIDE,
    "resnet": resnet.MIN_INPUT_SIDE,
}


def build_architecture(
    name: str,
    input_shape: tuple[int, int, int],
    classes: int,
    *,
    l2: float = 0.0,
    preprocessing: Sequence[keras.layers.Layer] = (),
) -> keras.Model:
    """Build architecture `name`; options of one architecture only (ResNet's) keep defaults."""
    builder = ARCHITECTURES.get(name)
    if builder is None:
        allowed = ", ".join(ARCHITECTURES)
        raise UserError(f"unknown architecture {name!r}; choose one of: {allowed}")
    return builder(input_shape, classes, l2=l2, preprocessing=preprocessing)


def body_of(model: keras.Model) -> keras.Model:
    """The convolutional body of `model` (input → "body_output"), sharing its layers."""
    try:
        features = model.get_layer(BODY_OUTPUT).output
    except ValueError:
        raise UserError(
            f"model {model.name!r} has no layer named {BODY_OUTPUT!r}, so it has no known body"
        ) from None
    return keras.Model(model.input, features, name=f"{model.name}_body")
