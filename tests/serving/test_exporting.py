"""Exports for serving (`imgclf.serving.exporting`): the SavedModel on raw JPEG/PNG bytes agrees
with `Classifier`, the LiteRT files with the Keras model, a logreg exports as one network, an
unsafe model is refused, and the SavedModel runs where imgclf is not installed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

from imgclf.core.errors import UserError
from imgclf.serving.classifier import load_classifier
from imgclf.serving.exportedmodels import SavedModelRunner, classify_files, tflite_predictor
from imgclf.serving.exporting import (
    SAVED_MODEL,
    TFLITE,
    convert_tflite,
    export_digests,
    serving_model,
    write_export,
)
from support.images import CLASSES, photo
from support.models import IMAGE_SIZE, classify_all

# Measured on the fixtures below (tiny position-sensitive model, area resize): TensorFlow's
# decode + resize against OpenCV's gave top-1 identical everywhere and probability gaps up to
# 0.0013 (the PNGs enlarged to the packed size: other kernels; JPEGs decode to OpenCV's pixels);
# the bound leaves room for another libjpeg build.
BYTES_TOLERANCE = 0.005
# The float32 LiteRT model runs the same float32 maths with other kernels.
FLOAT32_TOLERANCE = 1.0e-4


def export(model_path: Path, folder: Path) -> Path:
    """Export a model file, calibrating int8 on a few seeded random packed images."""
    rng = np.random.default_rng(0)
    calibration = rng.uniform(0, 255, (8, *IMAGE_SIZE, 3)).astype(np.float32)
    write_export(serving_model(load_classifier(model_path)), folder, calibration, "cnn/seed0")
    return folder


@pytest.fixture(scope="module")
def keras_export(keras_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(keras_model, tmp_path_factory.mktemp("export") / "export")


@pytest.fixture(scope="module")
def image_files(folder: Path) -> list[str]:
    """The JPEGs of `folder` (several decoded at libjpeg's reduced size), one of them as a
    phone stores a portrait photo (EXIF orientation 6: turn it a quarter), the same photos as
    PNGs, and one PNG with transparency."""
    jpegs = sorted(str(path) for path in folder.rglob("*.jpg"))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    turned = folder / "turned.jpg"
    Image.open(jpegs[0]).save(turned, "JPEG", exif=exif, quality=90)
    jpegs.append(str(turned))
    pngs = []
    for path in jpegs:
        png = path.replace(".jpg", ".png")
        cv2.imwrite(png, cv2.imread(path))
        pngs.append(png)
    alpha = np.linspace(0, 255, 33 * 45).reshape(33, 45).astype(np.uint8)
    cv2.imwrite(str(folder / "alpha.png"), np.dstack([photo(45, 33, (20, 200, 60), 7), alpha]))
    return [*jpegs, *pngs, str(folder / "alpha.png")]


def packed(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, *IMAGE_SIZE, 3)).astype(np.float32)


def test_saved_model_on_bytes_agrees_with_the_classifier(
    keras_model: Path, keras_export: Path, image_files: list[str]
) -> None:
    expected = classify_all(keras_model, image_files)
    runner = SavedModelRunner(keras_export / SAVED_MODEL)
    results = dict(classify_files(runner, image_files, batch_size=5))
    assert runner.label_names == CLASSES
    gaps = [np.abs(results[path] - expected[path]).max() for path in image_files]
    top1 = [results[path].argmax() == expected[path].argmax() for path in image_files]
    print(f"largest probability gap on {len(gaps)} files: {max(gaps):.6f}")  # for docs/using.md
    assert all(top1)
    assert max(gaps) <= BYTES_TOLERANCE


def test_saved_model_names_the_classes_and_a_bad_file(
    keras_export: Path, image_files: list[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    runner = SavedModelRunner(keras_export / SAVED_MODEL)
    results = dict(classify_files(runner, [image_files[0], str(broken)], batch_size=4))
    assert isinstance(results[image_files[0]], np.ndarray)
    assert results[str(broken)] == "not a decodable JPEG or PNG image"
    data = Path(image_files[0]).read_bytes()
    outputs = runner.signature(image_bytes=np.array([data, data], dtype=object))
    assert outputs["classes"].numpy().tolist() == [[name.encode() for name in CLASSES]] * 2
    label = CLASSES[int(results[image_files[0]].argmax())]
    assert outputs["label"].numpy().tolist() == [label.encode()] * 2


def test_float32_litert_agrees_with_keras(keras_model: Path, keras_export: Path) -> None:
    images = packed(6, seed=1)
    expected = load_classifier(keras_model).predict_packed(images)
    result = tflite_predictor(keras_export / TFLITE["float32"])(images)
    assert np.abs(result - expected).max() <= FLOAT32_TOLERANCE
    assert (result.argmax(1) == expected.argmax(1)).all()


def test_int8_litert_gives_probabilities(keras_export: Path) -> None:
    result = tflite_predictor(keras_export / TFLITE["int8"])(packed(6, seed=2))
    assert result.shape == (6, len(CLASSES))
    assert (result >= 0).all()
    # Quantised softmax outputs: steps of 1/256 each.
    assert np.allclose(result.sum(axis=1), 1, atol=len(CLASSES) / 256)
    assert (keras_export / TFLITE["int8"]).stat().st_size > 0


def test_logreg_exports_as_one_network(logreg_model: Path) -> None:
    classifier = load_classifier(logreg_model)
    extractor, pipeline = classifier.model
    images = packed(5, seed=3)
    features = extractor.predict_on_batch(images)
    network = serving_model(classifier).network
    head = network.get_layer("logreg")
    assert np.abs(head(features).numpy() - pipeline.predict_proba(features)).max() < 1e-5
    interpreter = Interpreter(model_content=convert_tflite(serving_model(classifier)))
    result = interpreter.get_signature_runner()(images=images)["probabilities"]
    assert np.abs(result - classifier.predict_packed(images)).max() <= FLOAT32_TOLERANCE


def test_a_model_with_code_is_not_exported(tmp_path: Path) -> None:
    import keras

    from imgclf.models.modelcard import ModelCard

    inputs = keras.Input((*IMAGE_SIZE, 3))
    outputs = keras.layers.Dense(3, activation="softmax")(
        keras.layers.Lambda(lambda x: x * 2)(keras.layers.GlobalAveragePooling2D()(inputs))
    )
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    size = IMAGE_SIZE
    ModelCard(kind="keras", label_names=CLASSES, image_size=size, input_size=size).write(path)
    with pytest.raises(UserError, match="refusing to load a Lambda layer"):
        serving_model(load_classifier(path))
    assert not (tmp_path / "export").exists()


FRESH = """
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
data = [open(path, "rb").read() for path in sys.argv[2:]]
outputs = loaded.signatures["serving_default"](image_bytes=tf.constant(data))
assert not any(name == "imgclf" or name.startswith("imgclf.") for name in sys.modules)
print(json.dumps(outputs["probabilities"].numpy().tolist()))
"""


@pytest.mark.slow  # a fresh TensorFlow import: 10-30 s on the shared 2-core machine
def test_saved_model_runs_without_imgclf(keras_export: Path, image_files: list[str]) -> None:
    files = image_files[:3]
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", FRESH, str(keras_export / SAVED_MODEL), *files],
        capture_output=True,
        text=True,
        env=environment,
        cwd=keras_export,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = np.asarray(json.loads(done.stdout.strip().splitlines()[-1]))
    runner = SavedModelRunner(keras_export / SAVED_MODEL)
    expected = runner([Path(path).read_bytes() for path in files])
    assert np.abs(result - expected).max() < 1e-6


@pytest.mark.parametrize("export_file", [SAVED_MODEL, TFLITE["float32"]])
def test_classify_runs_exports(
    keras_model: Path,
    keras_export: Path,
    folder: Path,
    export_file: str,
    tmp_path: Path,
) -> None:
    from imgclf.serving.command import iter_inputs, main

    out = tmp_path / "top1.csv"
    main(
        [
            "--model",
            str(keras_export / export_file),
            "--top-k",
            "1",
            "--csv",
            str(out),
            str(folder),
        ]
    )
    rows = out.read_text(encoding="utf-8").splitlines()[1:]
    paths = list(iter_inputs([str(folder)]))
    expected = classify_all(keras_model, paths)
    assert [row.split(",")[0] for row in rows] == paths
    assert [row.split(",")[2] for row in rows] == [CLASSES[expected[p].argmax()] for p in paths]
    with pytest.raises(SystemExit):  # an export is one centre crop
        main(["--model", str(keras_export / export_file), "--crops", "10", str(folder)])


EXPORT_AGAIN = """
import sys
from pathlib import Path
import imgclf
from imgclf.models.runtime import setup
setup(0, deterministic=True)
import numpy as np
from imgclf.serving.classifier import load_classifier
from imgclf.serving.exporting import serving_model, write_export
calibration = np.random.default_rng(0).uniform(0, 255, (8, *map(int, sys.argv[3:5]), 3))
classifier = load_classifier(sys.argv[1])
write_export(serving_model(classifier), Path(sys.argv[2]), calibration, "cnn/seed0")
"""


@pytest.mark.slow  # two fresh processes export the model: 20-40 s on the shared machine
def test_the_same_model_exports_to_the_same_bytes(keras_model: Path, tmp_path: Path) -> None:
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", EXPORT_AGAIN, str(keras_model), str(tmp_path / name)]
            + [str(side) for side in IMAGE_SIZE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    for run in runs:
        _, errors = run.communicate()
        assert run.returncode == 0, errors[-2000:]
    first, second = export_digests(tmp_path / "first"), export_digests(tmp_path / "second")
    assert first == second
    assert set(first) == {SAVED_MODEL, *TFLITE}
