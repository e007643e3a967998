"""An export against its source model: agreement, accuracy delta, largest probability gap."""

import numpy as np
import pytest

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import SplitPredictions
from imgclf.evaluation.exportfidelity import centre_crop_split, export_comparison

PATHS = ["a.png", "b.png", "c.png", "d.png"]


def split(probabilities: list[list[float]], paths: list[str] = PATHS) -> SplitPredictions:
    return SplitPredictions(np.asarray(probabilities, np.float32), np.array([0, 1, 1, 0]), paths)


def test_comparison_counts_agreement_delta_and_gap() -> None:
    source = split([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])  # 3 of 4 right
    export = split([[0.8, 0.2], [0.3, 0.7], [0.45, 0.55], [0.4, 0.6]])  # 3 of 4, another
    values = export_comparison(export, source)
    assert values == {
        "test.agreement": 0.5,
        "test.accuracy_delta": 0.0,
        "test.max_probability_gap": pytest.approx(0.3, abs=1e-6),
    }


def test_other_images_are_refused() -> None:
    source = split([[1.0, 0.0]] * 4)
    with pytest.raises(UserError, match="same images"):
        export_comparison(split([[1.0, 0.0]] * 4, PATHS[::-1]), source)


def test_the_source_is_compared_on_its_centre_crop() -> None:
    ten, one = split([[1.0, 0.0]] * 4), split([[0.0, 1.0]] * 4)
    assert centre_crop_split({"test": ten, "test_1crop": one}, "test") is one
    assert centre_crop_split({"test": ten}, "test") is ten
