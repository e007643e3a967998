"""Run the exports `imgclf.serving.exporting` wrote: the SavedModel on encoded image files, the
LiteRT models on packed images (with the LiteRT interpreter, `ai-edge-litert`), and both
over the val/test packs so the evaluate stage scores them like any model."""

import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from imgclf.core.errors import UserError
from imgclf.core.fileio import read_json
from imgclf.data.hdf5io import PackReader, SplitPredictions
from imgclf.serving.classifier import Classifier
from imgclf.serving.exporting import INFO, SAVED_MODEL, TFLITE


def is_export(path: Path) -> bool:
    """A SavedModel folder or a LiteRT file, as `--model` may name."""
    return path.suffix == ".tflite" or (path / "saved_model.pb").is_file()


class SavedModelRunner:
    """The SavedModel's `serving_default` signature: encoded bytes in, probabilities out."""

    def __init__(self, path: Path | str) -> None:
        try:
            loaded = tf.saved_model.load(str(path))
        except (OSError, ValueError) as error:
            raise UserError(f"{path}: cannot load the SavedModel ({error})") from None
        self._loaded = loaded  # keeps the signature's variables alive
        self.signature = loaded.signatures["serving_default"]
        self.label_names = tuple(name.decode() for name in loaded.label_names.numpy())

    def __call__(self, image_bytes: list[bytes]) -> np.ndarray:
        return self.signature(image_bytes=tf.constant(image_bytes))["probabilities"].numpy()


def classify_files(
    runner: SavedModelRunner, paths: Iterable[str], batch_size: int
) -> Iterator[tuple[str, np.ndarray | str]]:
    """(path, probabilities or why it failed) per file, the bytes decoded by the SavedModel;
    a batch that fails is retried file by file to name the bad one."""
    remaining = iter(paths)
    while batch := list(itertools.islice(remaining, batch_size)):
        loaded: list[bytes | str] = [_read(path) for path in batch]
        good = [item for item in loaded if isinstance(item, bytes)]
        try:
            outputs = iter(runner(good) if good else ())
        except tf.errors.InvalidArgumentError:
            outputs = iter(_one_by_one(runner, good))
        for path, item in zip(batch, loaded, strict=True):
            yield path, next(outputs) if isinstance(item, bytes) else item


def _read(path: str) -> bytes | str:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        return f"cannot read file ({error.strerror or error})"


def _one_by_one(runner: SavedModelRunner, items: list[bytes]) -> Iterator[np.ndarray | str]:
    for item in items:
        try:
            yield runner([item])[0]
        except tf.errors.InvalidArgumentError:
            yield "not a decodable JPEG or PNG image"


def tflite_predictor(path: Path | str) -> Callable[[np.ndarray], np.ndarray]:
    """A LiteRT model as a function from float32 packed images (B, H, W, 3) to (B, classes)."""
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
    except ValueError as error:
        raise UserError(f"{path}: not a LiteRT model ({error})") from None
    runner = interpreter.get_signature_runner()

    def predict(images: np.ndarray) -> np.ndarray:
        return runner(images=np.asarray(images, np.float32))["probabilities"]

    return predict


def tflite_classifier(path: Path) -> Classifier:
    """A LiteRT export as a `Classifier`, its sizes from the imgclf.json written beside it."""
    info = read_json(path.parent / INFO)
    size = tuple(info["image_size"])
    # The export crops inside the model: it takes the whole packed image.
    return Classifier(
        tuple(info["label_names"]),
        size,
        size,
        info["interpolation"],
        tflite_predictor(path),
        croppable=False,
    )


def predict_exported_pack(
    predict: Callable[[np.ndarray], np.ndarray], pack: Path, batch_size: int, encode: bool
) -> SplitPredictions:
    """Probabilities for every row of a pack, in order; `encode`: each packed image goes in as
    PNG bytes (lossless, already at the packed size), for the SavedModel's bytes signature."""
    batches = []
    with PackReader(pack) as reader:
        for images, _ in reader.iter_chunks():
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size]
                inputs = (
                    [encode_png(image) for image in batch] if encode else batch.astype(np.float32)
                )
                batches.append(np.asarray(predict(inputs), np.float32))
        return SplitPredictions(np.concatenate(batches), reader.labels, reader.paths)


def encode_png(image: np.ndarray) -> bytes:
    """A packed RGB image as PNG bytes, lossless."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserError("OpenCV could not encode a packed image as PNG")
    return data.tobytes()


def export_predictors(folder: Path) -> dict[str, tuple[Callable, bool]]:
    """Each export in `folder` as (predict, takes encoded bytes), by its name in
    `export.export_names()`: the SavedModel on PNG bytes, the LiteRT files on packed images."""
    return {
        SAVED_MODEL: (SavedModelRunner(folder / SAVED_MODEL), True),
        **{name: (tflite_predictor(folder / file), False) for name, file in TFLITE.items()},
    }


def predict_exports(
    folder: Path, packs: dict[str, Path], batch_size: int
) -> dict[str, dict[str, SplitPredictions]]:
    """Every export in `folder` run on each pack (by split name), as `export_predictors`
    feeds it."""
    return {
        export: {
            split: predict_exported_pack(predict, pack, batch_size, encode)
            for split, pack in packs.items()
        }
        for export, (predict, encode) in export_predictors(folder).items()
    }
