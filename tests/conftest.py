"""Shared fixtures: tiny synthetic image folders, the tiny pipeline built once, and small
trained-model files for the classifier tests (the helpers they use are in `support`)."""

# imgclf before anything that loads NumPy: importing it pins NumPy's and OpenBLAS's kernels.
import imgclf  # noqa: F401

# isort: split
import fcntl
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from support.images import CLASSES, photo, write_image_folder
from support.models import IMAGE_SIZE, INPUT_SIZE, tiny_classifier


def pytest_sessionstart(session: pytest.Session) -> None:
    """TensorFlow set up as every stage sets it up, before any test runs it (the set-up
    cannot change TensorFlow's thread pool once it has run)."""
    from imgclf.models.runtime import setup

    setup(0, deterministic=True)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """3 classes × 8 JPEGs of varied sizes."""
    return write_image_folder(tmp_path / "images")


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """The tiny pipeline built once per test run and committed; tests take copies of it.

    With pytest-xdist (`make test` runs two workers) the first worker to need it builds it
    in the run's shared temporary folder while the others wait for it."""
    from support.project import Project  # (imports the pipeline's test helpers: only here)

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


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Keras classifier file as the cnn stage writes it, model card included."""
    import keras

    from imgclf.models.modelcard import ModelCard

    path = tmp_path_factory.mktemp("keras") / "cnn.keras"
    keras.utils.set_random_seed(0)
    tiny_classifier().save(path)
    card = ModelCard(
        kind="keras",
        model="cnn/seed0",
        arch="tiny",
        label_names=CLASSES,
        image_size=IMAGE_SIZE,
        input_size=INPUT_SIZE,
    )
    card.write(path)
    return path


@pytest.fixture(scope="module")
def logreg_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/logreg.skops on features of a random minivggnet backbone.keras beside models/."""
    import keras

    from imgclf.models.backbones import build_backbone
    from imgclf.models.features import feature_extractor
    from imgclf.models.logistic import build_logreg, save_logreg
    from imgclf.models.modelcard import ModelCard

    root = tmp_path_factory.mktemp("logreg")
    keras.utils.set_random_seed(0)
    backbone = build_backbone("minivggnet", (*IMAGE_SIZE, 3), "none")
    backbone.save(root / "backbone.keras")
    spec = {"arch": "minivggnet", "weights": "none", "image_size": IMAGE_SIZE}
    ModelCard(kind="backbone", **spec).write(root / "backbone.keras")
    labels = np.arange(30) % len(CLASSES)
    images = np.stack(
        [
            cv2.resize(photo(30, 30, (label * 90, 200 - label * 60, 40), i), IMAGE_SIZE[::-1])
            for i, label in enumerate(labels)
        ]
    ).astype(np.float32)
    features = feature_extractor(backbone, "max").predict(images, verbose=0)
    model = build_logreg(max_iter=500, seed=0).fit(features, labels)
    card = ModelCard(
        kind="logreg",
        model="logreg",
        label_names=CLASSES,
        pooling="max",
        backbone="../backbone.keras",
        **spec,
    )
    save_logreg(model, root / "models" / "logreg.skops", card)
    return root / "models" / "logreg.skops"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes × 4 JPEGs of varied sizes, several large enough for JPEG reduced decoding."""
    return write_image_folder(tmp_path_factory.mktemp("images"), per_class=4)
