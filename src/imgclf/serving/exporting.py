"""Export a pipeline model for serving outside this package (stage `export`).

Any model `imgclf.serving.classifier` loads becomes one Keras network from the packed image
(float32 RGB 0–255 at `base.image_size`) to class probabilities: a cnn or finetune model
behind its evaluation centre crop, a logreg as its backbone's pooled features, the fitted
standardisation (a Normalization layer) and the coefficients (a softmax Dense layer). It is
written as

- `saved_model/`: a SavedModel whose `serving_default` signature takes encoded JPEG/PNG bytes
  and runs the pack stage's preparation in the graph (`imgclf.serving.decoding`); `packed`
  takes packed images; `label_names` and `image_size` are stored with it;
- `float32.tflite` and `int8.tflite`: LiteRT models of the `packed` signature; int8 is
  post-training quantised (weights and activations; float input and output), its activation
  ranges calibrated on a seeded sample of the train pack;
- `imgclf.json`: class names, sizes and the source model, for callers of the LiteRT files.

An export is the single centre-crop model with no temperature: its probabilities are those
of `python -m imgclf.classify --model <source> --crops 1 --temperature 1`.
"""

import hashlib
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.core.protobuf import fingerprint_pb2

from imgclf.core.errors import UserError
from imgclf.core.fileio import write_json
from imgclf.data.hdf5io import PackReader
from imgclf.serving.classifier import Classifier
from imgclf.serving.decoding import pack_images

SAVED_MODEL = "saved_model"
TFLITE = {"float32": "float32.tflite", "int8": "int8.tflite"}
INFO = "imgclf.json"
PACKED_SIGNATURE = "packed"


@dataclass(frozen=True)
class ServingModel:
    """One network from packed images to probabilities, and what a caller needs to feed it."""

    network: keras.Model
    label_names: tuple[str, ...]
    image_size: tuple[int, int]
    interpolation: str


def serving_model(classifier: Classifier) -> ServingModel:
    """The classifier's model(s) as one Keras network taking the packed image."""
    inputs = keras.Input((*classifier.image_size, 3), name="image")
    if isinstance(classifier.model, keras.Model):
        crop = keras.layers.CenterCrop(*classifier.input_size, name="centre_crop")
        cropped = inputs if classifier.input_size == classifier.image_size else crop(inputs)
        outputs = classifier.model(cropped, training=False)
    elif isinstance(classifier.model, tuple):
        extractor, pipeline = classifier.model
        outputs = _logreg_head(pipeline)(extractor(inputs, training=False))
    else:
        raise UserError(f"cannot export a model of type {type(classifier.model).__name__}")
    network = keras.Model(inputs, outputs, name="serving")
    return ServingModel(
        network, classifier.label_names, classifier.image_size, classifier.interpolation
    )


def _logreg_head(pipeline: Any) -> keras.Sequential:
    """StandardScaler + LogisticRegression as one Dense layer: the scaler folded into the
    weights (w / scale, b - sum(w * mean / scale)). Kept apart, the int8 model quantised the
    standardised features with one range, which a few rare features stretch (-10 to 106 on
    the demo while 99.9 % lay within ±5.4): its test accuracy fell to 0.147 (folded: 0.760)."""
    scaler, logistic = pipeline.named_steps.values()
    coef, intercept = logistic.coef_, logistic.intercept_
    if coef.shape[0] == 1:  # two classes: sigmoid(z) is softmax over (0, z)
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
    # scale_ is 1 where a feature is constant, as StandardScaler divides by it.
    weights = coef / scaler.scale_
    bias = intercept - weights @ scaler.mean_
    dense = keras.layers.Dense(len(bias), activation="softmax", name="logistic")
    head = keras.Sequential([keras.Input((len(scaler.mean_),)), dense], name="logreg")
    dense.set_weights([weights.T.astype(np.float32), bias.astype(np.float32)])
    return head


class _Serving(tf.Module):
    """What the SavedModel holds: the network, its class names and two signatures."""

    def __init__(self, model: ServingModel) -> None:
        super().__init__()
        self.network = model.network
        self.label_names = tf.Variable(model.label_names, trainable=False, name="label_names")
        self.image_size = tf.Variable(model.image_size, trainable=False, name="image_size")
        self._size, self._interpolation = model.image_size, model.interpolation
        bytes_spec = tf.TensorSpec([None], tf.string, name="image_bytes")
        packed_spec = tf.TensorSpec([None, *model.image_size, 3], tf.float32, name="images")
        self.serve = tf.function(self._serve, input_signature=[bytes_spec])
        self.packed = tf.function(self._packed, input_signature=[packed_spec])

    def _serve(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        images = pack_images(image_bytes, self._size, self._interpolation)
        probabilities = self.network(images, training=False)
        count = tf.shape(probabilities)[0]
        return {
            "probabilities": probabilities,
            "classes": tf.tile(self.label_names[None], [count, 1]),
            "label": tf.gather(self.label_names, tf.argmax(probabilities, axis=1)),
        }

    def _packed(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        # Probabilities only: the LiteRT files are made from this signature, and int8
        # kernels hold no strings (the names are in label_names and imgclf.json).
        return {"probabilities": self.network(images, training=False)}


def save_saved_model(model: ServingModel, path: Path) -> None:
    """Write the SavedModel; the same model gives the same bytes (see `_fixed_fingerprint`)."""
    serving = _Serving(model)
    signatures = {"serving_default": serving.serve, PACKED_SIGNATURE: serving.packed}
    tf.saved_model.save(serving, str(path), signatures=signatures)
    _fixed_fingerprint(path / "fingerprint.pb")


def _fixed_fingerprint(path: Path) -> None:
    """fingerprint.pb holds hashes of the SavedModel's parts and a random `uuid`, the one
    thing that differs between saves; derive it from those hashes instead."""
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(path.read_bytes())
    fingerprint.uuid = ""
    digest = hashlib.sha256(fingerprint.SerializeToString(deterministic=True)).digest()
    fingerprint.uuid = str(uuid.UUID(bytes=digest[:16]).int)
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))


def convert_tflite(model: ServingModel, calibration: np.ndarray | None = None) -> bytes:
    """The network as a LiteRT flatbuffer taking packed images: float32, or int8 with
    activation ranges calibrated on `calibration` (N, H, W, 3) float32 images, but for the
    classifier's last layer and softmax, kept float (see `_quantised`)."""
    with tempfile.TemporaryDirectory() as scratch:
        # From a SavedModel holding only the network: the converter then freezes every
        # variable (the served SavedModel's string variables would stay variables, which
        # int8 calibration cannot read).
        archive = keras.export.ExportArchive()
        archive.track(model.network)
        archive.add_endpoint(
            PACKED_SIGNATURE,
            lambda images: {"probabilities": model.network(images, training=False)},
            input_signature=[
                tf.TensorSpec([None, *model.image_size, 3], tf.float32, name="images")
            ],
        )
        archive.write_out(scratch, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            scratch, signature_keys=[PACKED_SIGNATURE]
        )
        if calibration is None:
            return converter.convert()
        kept_float = _last_dense_output(converter.convert())
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _one_by_one(calibration)
        return _quantised(converter, kept_float)


def _quantised(converter: tf.lite.TFLiteConverter, kept_float: str | None) -> bytes:
    """int8 everywhere but the last dense layer (`kept_float`, its output tensor) and the
    softmax. Quantised with the rest, the demo's logistic regression on 4,096 features lost
    6.7 points of test accuracy (0.827 to 0.760, AMD EPYC run); kept float, its int8 file
    (0.25 MB, against 0.44 MB in float32) and `finetune`'s matched their float sources."""
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,  # the float layers' kernels
    ]
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=[kept_float] if kept_float else [], denylisted_ops=["SOFTMAX"]
    )
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset, debug_options=options
    )
    return debugger.get_nondebug_quantized_model()


def _last_dense_output(float_model: bytes) -> str | None:
    """The name of the last FULLY_CONNECTED op's output in a float LiteRT model (None for a
    network without one)."""
    interpreter = Interpreter(model_content=float_model)
    names = {tensor["index"]: tensor["name"] for tensor in interpreter.get_tensor_details()}
    # The op list has no public reader in LiteRT's Python API.
    dense = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    return names[dense[-1]["outputs"][0]] if dense else None


def _one_by_one(images: np.ndarray) -> Iterator[list[np.ndarray]]:
    for image in images:
        yield [image[None].astype(np.float32)]


def calibration_sample(count: int, total: int, seed: int) -> np.ndarray:
    """Sorted row indices of `count` train images (all of them if fewer), drawn with `seed`."""
    rows = np.random.default_rng(seed).choice(total, size=min(count, total), replace=False)
    return np.sort(rows)


def calibration_images(train: Path, count: int, seed: int) -> np.ndarray:
    """The int8 model's calibration images: `calibration_sample` rows of the train pack."""
    with PackReader(train) as reader:
        return reader.images[calibration_sample(count, len(reader), seed)].astype("float32")


def write_export(
    model: ServingModel, folder: Path, calibration: np.ndarray, source: str
) -> dict[str, int]:
    """Write the SavedModel, both LiteRT files and imgclf.json into `folder` (a fresh one, as
    `fileio.atomic_output` gives); return each export's size in bytes (see `export_files`)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_saved_model(model, folder / SAVED_MODEL)
    (folder / TFLITE["float32"]).write_bytes(convert_tflite(model))
    (folder / TFLITE["int8"]).write_bytes(convert_tflite(model, calibration))
    write_json(
        folder / INFO,
        {
            "source": source,
            "label_names": list(model.label_names),
            "image_size": list(model.image_size),
            "interpolation": model.interpolation,
            "input": "float32 (batch, height, width, 3) RGB 0-255 at image_size",
        },
    )
    return {
        name: sum(path.stat().st_size for path in files)
        for name, files in export_files(folder).items()
    }


def export_files(folder: Path) -> dict[str, list[Path]]:
    """The files of each export in `folder`, sorted."""
    saved = sorted(path for path in (folder / SAVED_MODEL).rglob("*") if path.is_file())
    return {SAVED_MODEL: saved, **{name: [folder / file] for name, file in TFLITE.items()}}


def export_digests(folder: Path) -> dict[str, str]:
    """An MD5 of each export's files (names and bytes): equal digests, identical exports."""
    digests = {}
    for name, files in export_files(folder).items():
        digest = hashlib.md5()
        for path in files:
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
        digests[name] = digest.hexdigest()
    return digests


def export_names() -> Sequence[str]:
    """The exports, as named under data/predictions/export and in the metrics."""
    return (SAVED_MODEL, *TFLITE)
