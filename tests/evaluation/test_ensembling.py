"""Ensembles average members row by row and refuse members of different images."""

import numpy as np
import pytest

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import SplitPredictions
from imgclf.evaluation.ensembling import average_predictions


def member(probabilities: list[list[float]], paths: list[str] | None = None) -> dict:
    rows = np.asarray(probabilities, np.float32)
    paths = paths or [f"{i}.png" for i in range(len(rows))]
    return {"test": SplitPredictions(rows, np.arange(len(rows)) % 2, paths)}


def test_identical_members_equal_the_member() -> None:
    one = member([[0.1, 0.9], [0.7, 0.3]])
    averaged = average_predictions([one, one, one], ["a", "b", "c"])
    np.testing.assert_array_equal(averaged["test"].probabilities, one["test"].probabilities)


def test_mean_of_members() -> None:
    averaged = average_predictions([member([[0.2, 0.8]]), member([[0.6, 0.4]])], ["a", "b"])
    np.testing.assert_allclose(averaged["test"].probabilities, [[0.4, 0.6]], rtol=1e-6)


def test_members_of_other_images_are_refused() -> None:
    with pytest.raises(UserError, match="'b' does not cover the same test images as 'a'"):
        average_predictions(
            [member([[0.2, 0.8]]), member([[0.6, 0.4]], ["other.png"])], ["a", "b"]
        )


def test_only_splits_every_member_has_are_averaged() -> None:
    ten_crop = {**member([[0.2, 0.8]]), "test_1crop": member([[0.5, 0.5]])["test"]}
    averaged = average_predictions([ten_crop, member([[0.6, 0.4]])], ["cnn", "logreg"])
    assert list(averaged) == ["test"]
