"""Predictions: centre crop and 10-crop geometry, probabilities per row, saved bytes."""

import hashlib
from pathlib import Path

import keras
import numpy as np
import pytest

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import (
    PackReader,
    SplitPredictions,
    load_predictions,
    save_predictions,
)
from imgclf.models.predicting import load_keras_model, predict_pack, ten_crops
from support.packs import random_images, write_pack


def test_ten_crops_are_corners_centre_and_mirrors() -> None:
    images = np.arange(2 * 5 * 6 * 3, dtype=np.float32).reshape(2, 5, 6, 3)
    crops = ten_crops(images, (3, 4)).numpy()
    assert crops.shape == (10, 2, 3, 4, 3)
    expected = [
        images[:, :3, :4],
        images[:, :3, 2:],
        images[:, 2:, :4],
        images[:, 2:, 2:],
        images[:, 1:4, 1:5],
    ]
    for index, window in enumerate(expected):
        np.testing.assert_array_equal(crops[index], window)
        np.testing.assert_array_equal(crops[index + 5], window[:, :, ::-1])


def corner_model(size: tuple[int, int]) -> keras.Model:
    """A fixed 'model' whose 2-class output depends on the top-left pixel's red value."""
    inputs = keras.Input((*size, 3))
    corner = keras.layers.Cropping2D(((0, size[0] - 1), (0, size[1] - 1)))(inputs)
    logits = keras.layers.Dense(
        2, kernel_initializer=keras.initializers.Constant([[0.01, -0.01], [0, 0], [0, 0]])
    )(keras.layers.Flatten()(corner))
    outputs = keras.layers.Softmax(name="predictions")(logits)
    return keras.Model(inputs, outputs)


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    labels = [0, 1, 0, 1, 0, 1, 1]
    return write_pack(tmp_path / "p.h5", random_images(7, 8, 9), labels, ["a", "b"], 3)


def test_centre_crop_prediction_matches_the_model(pack: Path) -> None:
    model = corner_model((4, 5))
    result = predict_pack(model, pack, batch_size=3, crops=1)
    with PackReader(pack) as reader:
        images = reader.images[:].astype(np.float32)[:, 2:6, 2:7]
        assert result.paths == reader.paths
        np.testing.assert_array_equal(result.labels, reader.labels)
    np.testing.assert_allclose(result.probabilities, model.predict(images, verbose=0), rtol=1e-6)
    assert result.probabilities.dtype == np.float32


def test_ten_crop_prediction_averages_the_crops(pack: Path) -> None:
    model = corner_model((4, 5))
    result = predict_pack(model, pack, batch_size=3, crops=10)
    with PackReader(pack) as reader:
        images = reader.images[:].astype(np.float32)
    crops = ten_crops(images, (4, 5)).numpy()
    expected = np.mean([model.predict(crop, verbose=0) for crop in crops], axis=0)
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("size", "windows"), [((5, 6), [(0, 0)]), ((5, 4), [(0, 0), (0, 2), (0, 1)])]
)
def test_coinciding_crops_count_once(size: tuple[int, int], windows: list) -> None:
    """A crop as tall (or as large) as the image has fewer distinct windows than five: a
    whole-image crop is one window and its mirror, not that pair five times."""
    images = np.arange(2 * 5 * 6 * 3, dtype=np.float32).reshape(2, 5, 6, 3)
    crops = ten_crops(images, size).numpy()
    assert len(crops) == 2 * len(windows)
    for index, (top, left) in enumerate(windows):
        window = images[:, top : top + size[0], left : left + size[1]]
        np.testing.assert_array_equal(crops[index], window)
        np.testing.assert_array_equal(crops[index + len(windows)], window[:, :, ::-1])


def test_model_and_pack_must_agree(pack: Path) -> None:
    with pytest.raises(UserError, match="smaller than the model's input"):
        predict_pack(corner_model((10, 10)), pack, batch_size=3)
    three = keras.Sequential(
        [
            keras.Input((4, 5, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    with pytest.raises(UserError, match="2 classes, but the model predicts 3"):
        predict_pack(three, pack, batch_size=3)


def test_predictions_round_trip_with_identical_bytes(tmp_path: Path) -> None:
    split = SplitPredictions(np.array([[0.25, 0.75]], np.float32), np.array([1]), ["x.png"])
    for name in ("a.h5", "b.h5"):
        save_predictions(tmp_path / name, {"val": split, "test": split}, ["no", "yes"])
    digests = {hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.h5", "b.h5")}
    assert len(digests) == 1
    splits, names = load_predictions(tmp_path / "a.h5")
    assert names == ["no", "yes"] and set(splits) == {"val", "test"}
    np.testing.assert_array_equal(splits["test"].probabilities, split.probabilities)
    assert splits["test"].paths == ["x.png"]


def test_unloadable_model_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.keras").write_text("nope")
    with pytest.raises(UserError, match="cannot load the model"):
        load_keras_model(tmp_path / "bad.keras")
