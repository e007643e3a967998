"""Model files carry their model card, checked when read, and are reproducible: the same
model, the same bytes."""

import dataclasses
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import skops.io as sio

from imgclf.core.errors import UserError
from imgclf.models.logistic import build_logreg, load_logreg, save_logreg
from imgclf.models.modelcard import ModelCard, check_classes, read_entry, write_entry

CARD = ModelCard(kind="keras", label_names=("a", "b"), image_size=(8, 8), input_size=(6, 6))


def tiny_keras_model() -> keras.Model:
    # A dtype policy shared by two layers: Keras saves it once, under the object's id().
    policy = keras.DTypePolicy("float32")
    # Every name given: Keras numbers default names per process ("dense_1").
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(4, kernel_initializer="identity", dtype=policy, name="a")(inputs)
    outputs = keras.layers.Dense(2, kernel_initializer="ones", dtype=policy, name="b")(hidden)
    return keras.Model(inputs, outputs, name="tiny")


def save_keras(model: keras.Model, path: Path) -> Path:
    model.save(path)
    CARD.write(path)
    return path


def fitted_logreg() -> object:
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)
    return build_logreg(max_iter=100, seed=0).fit(features, labels)


def test_card_round_trip(tmp_path: Path) -> None:
    path = save_keras(tiny_keras_model(), tmp_path / "model.keras")
    assert ModelCard.read(path) == CARD
    assert read_entry(path) == {
        "kind": "keras",
        "label_names": ["a", "b"],
        "image_size": [8, 8],
        "input_size": [6, 6],
    }
    with pytest.raises(UserError, match="already has imgclf"):
        CARD.write(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "svm"}, "its model card has kind 'svm'"),
        ({"input_size": None}, "its model card has no 'input_size'"),
        ({"image_size": [8]}, r"image_size = \[8\]; expected \[height, width\]"),
        ({"image_size": [8, 0]}, r"image_size = \[8, 0\]; expected \[height, width\]"),
        ({"label_names": "ab"}, "label_names = 'ab'; expected a list of names"),
        ({"interpolation": "nearest"}, "expected area or linear or cubic"),
        ({"saved": "today"}, r"unknown keys \['saved'\]"),
    ],
)
def test_a_malformed_card_is_refused_in_one_line(
    tmp_path: Path, change: dict, message: str
) -> None:
    stored = {**CARD.to_json(), **change}
    path = tmp_path / "model.keras"
    tiny_keras_model().save(path)
    write_entry(path, {key: value for key, value in stored.items() if value is not None})
    with pytest.raises(UserError, match=message) as caught:
        ModelCard.read(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_keras_file_has_no_save_time_or_object_ids(tmp_path: Path) -> None:
    first = save_keras(tiny_keras_model(), tmp_path / "first.keras")
    time.sleep(1.1)  # Keras and zip record the time to the second
    second = save_keras(tiny_keras_model(), tmp_path / "second.keras")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"date_saved" not in archive.read("metadata.json")
        assert b'"shared_object_id": 1' in archive.read("config.json")
    reloaded = keras.models.load_model(first)
    np.testing.assert_array_equal(reloaded.predict(np.ones((1, 4)), verbose=0), [[4.0, 4.0]])


def test_skops_file_does_not_depend_on_object_ids(tmp_path: Path) -> None:
    # Two equal models fitted separately: the same numbers in objects at other addresses.
    models = [fitted_logreg(), fitted_logreg()]
    paths = [tmp_path / "first.skops", tmp_path / "second.skops"]
    for model, path in zip(models, paths, strict=True):
        save_logreg(model, path, CARD)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    reloaded = load_logreg(paths[0])
    features = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_array_equal(
        reloaded.predict_proba(features), models[0].predict_proba(features)
    )
    assert ModelCard.read(paths[0]) == CARD


def test_skops_shared_objects_stay_shared(tmp_path: Path) -> None:
    array = np.arange(6.0)
    path = tmp_path / "shared.skops"
    sio.dump({"first": array, "second": array}, path)
    CARD.write(path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert loaded["first"] is loaded["second"]
    np.testing.assert_array_equal(loaded["first"], array)


def test_classes_are_checked_by_name_and_order(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    tiny_keras_model().save(path)
    dataclasses.replace(CARD, label_names=("cat", "dog")).write(path)
    check_classes(path, ("cat", "dog"), "pack.h5")
    # The same count in another order would swap every prediction: refused, in one line.
    for names in (["dog", "cat"], ["cat", "dog", "eel"]):
        with pytest.raises(UserError, match="trained on the classes") as caught:
            check_classes(path, names, "pack.h5")
        assert "\n" not in str(caught.value) and "pack.h5" in str(caught.value)
