"""Tiny Keras models: a classifier for the serving tests, a resumable one for the training
tests, and a callback that presses ctrl+c (TensorFlow is imported when they are called)."""

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from support.images import CLASSES

if TYPE_CHECKING:
    import keras

# Models for the classifier tests: packed image (h, w), sides differing so a swap shows, and
# the Keras model's centre crop.
IMAGE_SIZE = (20, 24)
INPUT_SIZE = (14, 18)


def tiny_classifier() -> "keras.Model":
    """Position-sensitive (conv, flatten, dense), with large weights so outputs differ."""
    import keras

    inputs = keras.Input((*INPUT_SIZE, 3))
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    maps = keras.layers.Conv2D(2, 3, strides=2, activation="relu")(scaled)
    logits = keras.layers.Dense(
        len(CLASSES), kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=0)
    )(keras.layers.Flatten()(maps))
    return keras.Model(inputs, keras.layers.Softmax(name="predictions")(logits))


def tiny_resumable() -> "keras.Model":
    """Dropout (random state) and SGD with momentum (optimizer state) must both resume."""
    import keras

    from imgclf.models.training import compile_classifier

    # Named, so that models built one after another in this process save the same config.
    inputs = keras.Input((4, 4, 3), name="image")
    flat = keras.layers.Flatten(name="flat")(inputs)
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(flat)
    dropped = keras.layers.Dropout(0.3, name="dropout")(hidden)
    outputs = keras.layers.Dense(2, activation="softmax", name="out")(dropped)
    model = keras.Model(inputs, outputs, name="tiny")
    compile_classifier(model, keras.optimizers.SGD(0.01, momentum=0.9, name="sgd"))
    return model


def stop_at(epoch: int) -> "keras.callbacks.Callback":
    """A callback that presses ctrl+c when epoch `epoch` (0-based) begins."""
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, begun: int, logs: dict | None = None) -> None:
            if begun == epoch:
                raise KeyboardInterrupt

    return Stop()


def classify_all(
    model: Path, paths: list[str], batch_size: int = 4, crops: int = 1
) -> dict[str, np.ndarray]:
    """Class probabilities of every path through `imgclf.serving.classifier`; all must load."""
    from imgclf.serving.classifier import classify_paths, load_classifier

    results = dict(classify_paths(load_classifier(model), paths, batch_size, crops))
    assert all(isinstance(result, np.ndarray) for result in results.values()), results
    return results
