"""Shared fixtures: tiny synthetic image folders, params built from the repo's params.yaml, and
small trained-model files for the classifier tests."""

# imgclf before anything that loads NumPy: importing it pins NumPy's and OpenBLAS's kernels.
import imgclf  # noqa: F401

# isort: split
import copy
import fcntl
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest
import yaml

from imgclf.config import Params, build_section

if TYPE_CHECKING:
    import keras

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("cat", "dog", "fox")
# (width, height): landscape, portrait, square, tiny and odd sizes.
SIZES = ((64, 48), (40, 72), (50, 50), (23, 31), (97, 41), (36, 36), (48, 64), (70, 30))


# Models for the classifier tests: packed image (h, w), sides differing so a swap shows, and
# the Keras model's centre crop.
IMAGE_SIZE = (20, 24)
INPUT_SIZE = (14, 18)


def photo(width: int, height: int, colour: tuple[int, int, int], seed: int) -> np.ndarray:
    """A BGR test image: a class colour, a gradient and noise, so every image differs."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 60, width, dtype=np.float32)[None, :, None]
    noise = rng.normal(0, 12, (height, width, 3)).astype(np.float32)
    image = np.asarray(colour, np.float32)[None, None, :] + ramp + noise
    return np.clip(image, 0, 255).astype(np.uint8)


def write_image_folder(root: Path, per_class: int = 8, extension: str = ".jpg") -> Path:
    """Class-per-subfolder images of varied sizes and aspect ratios under `root`."""
    for label_index, label in enumerate(CLASSES):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        colour = tuple(int(value) for value in np.roll((200, 60, 20), label_index))
        for index in range(per_class):
            width, height = SIZES[index % len(SIZES)]
            image = photo(width, height, colour, seed=label_index * 100 + index)
            cv2.imwrite(str(folder / f"{label}_{index:02d}{extension}"), image)
    return root


def pytest_sessionstart(session: pytest.Session) -> None:
    """TensorFlow set up as every stage sets it up, before any test runs it (the set-up
    cannot change TensorFlow's thread pool once it has run)."""
    from imgclf.models.runtime import setup

    setup(0, deterministic=True)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """3 classes × 8 JPEGs of varied sizes."""
    return write_image_folder(tmp_path / "images")


def repo_params_dict() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))


def make_params(**sections: dict[str, Any]) -> Params:
    """The repo's params with some keys replaced, e.g. make_params(split={"val": 0.2})."""
    raw = copy.deepcopy(repo_params_dict())
    for section, values in sections.items():
        raw[section].update(values)
    return build_section(Params, raw)


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """The tiny pipeline built once per test run and committed; tests take copies of it.

    With pytest-xdist (`make test` runs two workers) the first worker to need it builds it
    in the run's shared temporary folder while the others wait for it."""
    from pipeline_project import Project  # a test module: imported when the fixture runs

    shared = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):  # an xdist worker: the run's folder is above
        shared = shared.parent
    root, first_run = shared / "built" / "project", shared / "built" / "first_run.json"
    with open(shared / "built.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if first_run.exists():
            project = Project(root, existing=True)
            project.first_run = json.loads(first_run.read_text(encoding="utf-8"))
            return project
        project = Project(root)
        plain = project.env
        project.record_params()  # for test_stage_params: this first run only
        project.first_run = project.repro()
        project.env = plain
        project.commit("built")
        first_run.write_text(json.dumps(project.first_run), encoding="utf-8")
        return project


# --- trained-model files for imgclf.serving (TensorFlow imported lazily)


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


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Keras classifier file as the cnn stage writes it, metadata included."""
    import keras

    from imgclf.models.modelmeta import write_metadata

    path = tmp_path_factory.mktemp("keras") / "cnn.keras"
    keras.utils.set_random_seed(0)
    tiny_classifier().save(path)
    metadata = {"kind": "keras", "model": "cnn/seed0", "label_names": list(CLASSES)}
    write_metadata(
        path, {**metadata, "image_size": list(IMAGE_SIZE), "input_size": list(INPUT_SIZE)}
    )
    return path


@pytest.fixture(scope="module")
def logreg_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/logreg.skops on features of a random minivggnet backbone.keras beside models/."""
    import keras

    from imgclf.models.backbones import build_backbone
    from imgclf.models.features import feature_extractor
    from imgclf.models.logistic import build_logreg, save_logreg
    from imgclf.models.modelmeta import write_metadata

    root = tmp_path_factory.mktemp("logreg")
    keras.utils.set_random_seed(0)
    backbone = build_backbone("minivggnet", (*IMAGE_SIZE, 3), "none")
    backbone.save(root / "backbone.keras")
    spec = {"arch": "minivggnet", "weights": "none", "image_size": list(IMAGE_SIZE)}
    write_metadata(root / "backbone.keras", {"kind": "backbone", **spec})
    labels = np.arange(30) % len(CLASSES)
    images = np.stack(
        [
            cv2.resize(photo(30, 30, (label * 90, 200 - label * 60, 40), i), IMAGE_SIZE[::-1])
            for i, label in enumerate(labels)
        ]
    ).astype(np.float32)
    features = feature_extractor(backbone, "max").predict(images, verbose=0)
    model = build_logreg(max_iter=500, seed=0).fit(features, labels)
    metadata = {"kind": "logreg", "label_names": list(CLASSES), "pooling": "max", **spec}
    save_logreg(
        model, root / "models" / "logreg.skops", {**metadata, "backbone": "../backbone.keras"}
    )
    return root / "models" / "logreg.skops"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes × 4 JPEGs of varied sizes, several large enough for JPEG reduced decoding."""
    return write_image_folder(tmp_path_factory.mktemp("images"), per_class=4)


def classify_all(
    model: Path, paths: list[str], batch_size: int = 4, crops: int = 1
) -> dict[str, np.ndarray]:
    """Class probabilities of every path through `imgclf.serving.classifier`; all must load."""
    from imgclf.serving.classifier import classify_paths, load_classifier

    results = dict(classify_paths(load_classifier(model), paths, batch_size, crops))
    assert all(isinstance(result, np.ndarray) for result in results.values()), results
    return results
