"""A model file the pipeline wrote, loaded as a function from images to class probabilities.

Keras classifiers (`cnn` seeds, `finetune`) run as they are; a logistic regression (`.skops`)
runs on the pooled features of the backbone its model card names. Every image is prepared as
the pack stage prepared the training images (same decoding, JPEG reduced decoding included,
same aspect-aware resize, then the evaluation centre crop), with every size read from the
model card stored inside the model file (see `imgclf.models.modelcard`), so it cannot drift.
"""

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.core.errors import UserError
from imgclf.data.imaging import ImageError, load_like_pack
from imgclf.data.inputs import centre_crop
from imgclf.models.features import feature_extractor
from imgclf.models.logistic import load_logreg
from imgclf.models.modelcard import ModelCard
from imgclf.models.predicting import load_keras_model, ten_crops


@dataclass(frozen=True)
class Classifier:
    """A loaded model and the shape of what it takes, from the model file's card."""

    label_names: tuple[str, ...]
    image_size: tuple[int, int]  # the packed size (h, w): aspect-aware resize to this
    input_size: tuple[int, int]  # the model input (h, w): centre crop of the packed image
    interpolation: str
    predict: Callable[[np.ndarray], np.ndarray]  # float32 (B, h, w, 3) RGB 0–255 → (B, classes)
    croppable: bool = True  # a Keras model on crops; logreg pools the whole packed image
    # What `predict` runs, for `imgclf.serving.exporting` to rebuild as one network: the
    # keras.Model, or (feature extractor, scikit-learn pipeline) for a logreg.
    model: Any = None

    def predict_packed(self, packed: np.ndarray, crops: int = 1) -> np.ndarray:
        """(B, classes) for packed images (B, *image_size, 3): the centre crop, or the mean
        over the ten crops (the distinct ones of corners and centre, mirrored), as the predict
        stages compute it."""
        if crops == 1:
            return self.predict(centre_crop(packed, self.input_size))
        if not self.croppable:
            raise UserError("--crops 10 is for Keras models; logreg sees the whole image")
        views = np.asarray(ten_crops(packed, self.input_size))
        output = self.predict(views.reshape(-1, *self.input_size, 3))
        return np.asarray(output).reshape(len(views), len(packed), -1).mean(axis=0)


def load_classifier(path: Path | str) -> Classifier:
    """A Keras classifier or a logistic regression (through its backbone) the pipeline wrote."""
    path = Path(path)
    card = ModelCard.read(path)
    if card.kind == "keras":
        return _keras_classifier(path, card)
    if card.kind == "logreg":
        return _logreg_classifier(path, card)
    raise UserError(
        f"{path}: a model of kind {card.kind!r} does not classify images; "
        "use a cnn, finetune or logreg model"
    )


def _keras_classifier(path: Path, card: ModelCard) -> Classifier:
    model = load_keras_model(path)
    labels, image_size, input_size = card.label_names, card.image_size, card.input_size
    if input_size[0] > image_size[0] or input_size[1] > image_size[1]:
        raise UserError(
            f"{path}: its model card's input_size {input_size} exceeds image_size {image_size}"
        )
    if tuple(model.input_shape[1:3]) != input_size or model.output_shape[-1] != len(labels):
        raise UserError(
            f"{path}: the model takes {model.input_shape[1:3]} and predicts "
            f"{model.output_shape[-1]} classes, its model card says {input_size} and "
            f"{len(labels)}"
        )
    return Classifier(
        labels, image_size, input_size, _interpolation(card), model.predict_on_batch, model=model
    )


def _logreg_classifier(path: Path, card: ModelCard) -> Classifier:
    model = load_logreg(path)
    labels, image_size = card.label_names, card.image_size
    backbone_path = card.backbone_path(path)
    if not backbone_path.is_file():
        raise UserError(
            f"{path}: its backbone {backbone_path} is missing "
            f"(stored as {card.backbone!r}, relative to the model's folder)"
        )
    extractor = feature_extractor(load_keras_model(backbone_path), card.pooling)
    if tuple(extractor.input_shape[1:3]) != image_size:
        raise UserError(
            f"{backbone_path}: takes {extractor.input_shape[1:3]} images, "
            f"{path} was trained on {image_size}"
        )
    if list(model.classes_) != list(range(len(labels))):
        raise UserError(f"{path}: classes {list(model.classes_)} do not match {len(labels)} names")

    def predict(images: np.ndarray) -> np.ndarray:
        return model.predict_proba(extractor.predict_on_batch(images))

    # The features stage pools the whole packed image: no crop.
    return Classifier(
        labels,
        image_size,
        image_size,
        _interpolation(card),
        predict,
        croppable=False,
        model=(extractor, model),
    )


def _interpolation(card: ModelCard) -> str:
    # Stages that did not record pack.interpolation packed with the pipeline default, area.
    return card.interpolation or "area"


def load_packed(path: str, size: tuple[int, int], interpolation: str) -> np.ndarray:
    """`path` as the pack stage stores it: (*size, 3) RGB uint8, or an ImageError."""
    if os.path.isdir(path):  # only folders _walk does not enter reach here
        linked = os.path.islink(path)
        raise ImageError(
            "symbolic link to a folder (not followed)" if linked else "folder cannot be listed"
        )
    if not os.path.isfile(path):
        if os.path.exists(path):
            raise ImageError("not a regular file")
        raise ImageError("broken symbolic link" if os.path.islink(path) else "file not found")
    return load_like_pack(path, size, interpolation)


def classify_paths(
    classifier: Classifier, paths: Iterable[str], batch_size: int, crops: int = 1
) -> Iterator[tuple[str, np.ndarray | str]]:
    """(path, class probabilities or why it failed) for every path, in order, batch by batch;
    `crops`: 1 (centre crop) or 10, as `predict.crops`."""
    remaining = iter(paths)
    while batch := list(itertools.islice(remaining, batch_size)):
        loaded: list[np.ndarray | str] = []
        for path in batch:
            try:
                loaded.append(load_packed(path, classifier.image_size, classifier.interpolation))
            except ImageError as error:
                loaded.append(str(error))
        images = [item for item in loaded if isinstance(item, np.ndarray)]
        packed = np.stack(images).astype(np.float32) if images else None
        outputs = iter(classifier.predict_packed(packed, crops) if images else ())
        for path, item in zip(batch, loaded, strict=True):
            yield path, next(outputs) if isinstance(item, np.ndarray) else item
