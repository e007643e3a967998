"""A model file the pipeline wrote, loaded as a function from images to class probabilities.

Keras classifiers (`cnn` seeds, `finetune`) run as they are; a logistic regression (`.skops`)
runs on the pooled features of the backbone its metadata names. Every image is prepared as
the pack stage prepared the training images (same decoding, JPEG reduced decoding included,
same aspect-aware resize, then the evaluation centre crop), with every size read from the
metadata stored inside the model file (see `imgclf.models.modelmeta`), so it cannot drift.
"""

import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgclf.core.errors import UserError
from imgclf.data.imaging import INTERPOLATIONS, ImageError, load_like_pack
from imgclf.data.inputs import centre_crop
from imgclf.models.features import feature_extractor
from imgclf.models.logistic import load_logreg
from imgclf.models.modelmeta import read_metadata
from imgclf.models.predicting import load_keras_model, ten_crops


@dataclass(frozen=True)
class Classifier:
    """A loaded model and the shape of what it takes, from the model file's metadata."""

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
        over the ten crops (corners and centre, mirrored), as the predict stages compute it."""
        if crops == 1:
            return self.predict(centre_crop(packed, self.input_size))
        if not self.croppable:
            raise UserError("--crops 10 is for Keras models; logreg sees the whole image")
        crops_batch = np.asarray(ten_crops(packed, self.input_size))
        output = self.predict(crops_batch.reshape(-1, *self.input_size, 3))
        return np.asarray(output).reshape(10, len(packed), -1).mean(axis=0)


def model_file(models: Path, name: str) -> Path:
    """Where the pipeline writes model `name` (cnn/seed0, finetune, logreg) under `models`."""
    return models / f"{name}{'.skops' if name == 'logreg' else '.keras'}"


def load_classifier(path: Path | str) -> Classifier:
    """A Keras classifier or a logistic regression (through its backbone) the pipeline wrote."""
    path = Path(path)
    metadata = read_metadata(path)
    kind = metadata.get("kind")
    if kind == "keras":
        return _keras_classifier(path, metadata)
    if kind == "logreg":
        return _logreg_classifier(path, metadata)
    raise UserError(
        f"{path}: a model of kind {kind!r} does not classify images; "
        "use a cnn, finetune or logreg model"
    )


def _keras_classifier(path: Path, metadata: dict[str, Any]) -> Classifier:
    model = load_keras_model(path)
    labels = tuple(_field(path, metadata, "label_names"))
    image_size = _size(path, metadata, "image_size")
    input_size = _size(path, metadata, "input_size")
    if input_size[0] > image_size[0] or input_size[1] > image_size[1]:
        raise UserError(
            f"{path}: metadata input_size {input_size} exceeds image_size {image_size}"
        )
    if tuple(model.input_shape[1:3]) != input_size or model.output_shape[-1] != len(labels):
        raise UserError(
            f"{path}: the model takes {model.input_shape[1:3]} and predicts "
            f"{model.output_shape[-1]} classes, its metadata says {input_size} and {len(labels)}"
        )
    return Classifier(
        labels,
        image_size,
        input_size,
        _interpolation(path, metadata),
        model.predict_on_batch,
        model=model,
    )


def _logreg_classifier(path: Path, metadata: dict[str, Any]) -> Classifier:
    model = load_logreg(path)
    labels = tuple(_field(path, metadata, "label_names"))
    image_size = _size(path, metadata, "image_size")
    relative = _field(path, metadata, "backbone")
    # The logreg stage wrote os.path.relpath(backbone, model folder); normpath undoes it.
    backbone_path = Path(os.path.normpath(path.parent / relative))
    if not backbone_path.is_file():
        raise UserError(
            f"{path}: its backbone {backbone_path} is missing "
            f"(stored as {relative!r}, relative to the model's folder)"
        )
    pooling = _field(path, metadata, "pooling")
    if pooling not in ("avg", "max", "flatten"):
        raise UserError(f"{path}: metadata pooling = {pooling!r}; expected avg, max or flatten")
    extractor = feature_extractor(load_keras_model(backbone_path), pooling)
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
        _interpolation(path, metadata),
        predict,
        croppable=False,
        model=(extractor, model),
    )


def _field(path: Path, metadata: dict[str, Any], key: str) -> Any:
    if key not in metadata:
        raise UserError(f"{path}: its metadata has no {key!r}; rerun the stage that wrote it")
    return metadata[key]


def _size(path: Path, metadata: dict[str, Any], key: str) -> tuple[int, int]:
    value = _field(path, metadata, key)
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(side, int) and side > 0 for side in value)
    ):
        raise UserError(f"{path}: metadata {key} = {value!r}; expected [height, width]")
    return value[0], value[1]


def _interpolation(path: Path, metadata: dict[str, Any]) -> str:
    # Stages that do not record pack.interpolation packed with the pipeline default, area.
    value = metadata.get("interpolation", "area")
    if value not in INTERPOLATIONS:
        raise UserError(
            f"{path}: metadata interpolation = {value!r}; expected area, linear or cubic"
        )
    return value


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
