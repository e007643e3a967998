"""Class probabilities of a Keras model over a pack: centre crop, or the book's 10-crop
over-sampling (ch. 10: four corners and the centre, each also mirrored, averaged)."""

import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imgclf.core.errors import UserError
from imgclf.core.integrity import check_intact
from imgclf.data.hdf5io import PackReader, SplitPredictions
from imgclf.data.inputs import PackInfo, evaluation_dataset
from imgclf.models.layers import CUSTOM_OBJECTS


def load_keras_model(path: Path | str) -> keras.Model:
    """Load a `.keras` model safely (no arbitrary code), with a one-line error; a model
    file from a shared remote or a download may be crafted."""
    check_intact(path)
    try:  # custom layers are passed explicitly: safe mode loads no code from the file
        return keras.models.load_model(path, safe_mode=True, custom_objects=CUSTOM_OBJECTS)
    except (OSError, ValueError, TypeError) as error:
        raise UserError(f"{path}: {_load_failure(str(error))}") from None


def _load_failure(message: str) -> str:
    """Why Keras would not load a model, in one line (its own messages span many)."""
    if "`Lambda` layer" in message:
        return (
            "refusing to load a Lambda layer: it holds Python code that loading would run "
            "(imgclf models have none)"
        )
    if unknown := re.search(r"Could not locate (?:class|function) '([^']+)'", message):
        return f"refusing to load unknown class '{unknown[1]}' (not a Keras or imgclf object)"
    if unknown := re.search(
        r"Could not interpret \w+ identifier: \{'module': '([^']*)', "
        r"'class_name': '([^']*)'",
        message,
    ):
        return f"refusing to load {unknown[1]}.{unknown[2]} (not a Keras or imgclf object)"
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return f"cannot load the model ({first_line})"


def ten_crops(images: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """(V, B, h, w, 3): the distinct windows among the corners and the centre of a
    (B, H, W, 3) batch, then their mirror images. Ten views when the crop is smaller than the
    image both ways; when it is as tall or as wide, several windows coincide and each counts
    once (a crop of the whole image gives two views: it, mirrored), so that the average is
    not a mirror average counted five times."""
    height, width = images.shape[1], images.shape[2]
    crop_height, crop_width = size
    tops = (0, 0, height - crop_height, height - crop_height, (height - crop_height) // 2)
    lefts = (0, width - crop_width, 0, width - crop_width, (width - crop_width) // 2)
    windows = dict.fromkeys(zip(tops, lefts, strict=True))  # distinct, in the book's order
    crops = [
        images[:, top : top + crop_height, left : left + crop_width, :] for top, left in windows
    ]
    crops += [tf.reverse(crop, axis=[2]) for crop in crops]
    return tf.stack(crops)


def predict_pack(
    model: keras.Model, pack: Path | str, *, batch_size: int, crops: int = 1
) -> SplitPredictions:
    """Probabilities of `model` for every row of `pack`, in stored order."""
    info = PackInfo.read(pack)
    if model.output_shape[-1] != len(info.label_names):
        raise UserError(
            f"{pack}: {len(info.label_names)} classes, but the model predicts "
            f"{model.output_shape[-1]}"
        )
    size = tuple(model.input_shape[1:3])
    if size[0] > info.image_shape[0] or size[1] > info.image_shape[1]:
        raise UserError(
            f"{pack}: images are {info.image_shape[:2]}, smaller than the model's input {size}"
        )
    if crops == 1:
        dataset = evaluation_dataset(info, batch_size=batch_size, crop=size)
        probabilities = model.predict(dataset, verbose=0)
    else:
        batches = []  # each batch of B images becomes V * B crops, averaged per image
        for images, _ in evaluation_dataset(info, batch_size=batch_size):
            views = ten_crops(images, size)
            output = model.predict_on_batch(tf.reshape(views, (-1, *size, 3)))
            batches.append(output.reshape(len(views), len(images), -1).mean(axis=0))
        probabilities = np.concatenate(batches)
    with PackReader(pack) as reader:
        return SplitPredictions(probabilities.astype(np.float32), reader.labels, reader.paths)
