"""An export against its source model: agreement, accuracy delta, largest probability gap."""

import numpy as np
import pytest

from imgclf.core.errors import UserError
from imgclf.core.fileio import read_json
from imgclf.data.hdf5io import SplitPredictions
from imgclf.evaluation.exportfidelity import centre_crop_split, export_comparison, int8_loss
from support import REPO
from support.params import make_params

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


@pytest.mark.parametrize(
    ("agreement", "delta", "lost"),
    [
        (0.97, -0.01, []),  # within both bounds (0.95, 0.03)
        (0.95, -0.03, []),  # on the bounds: kept
        (0.94, 0.0, ["top-1 agreement 0.9400 < export.int8_min_agreement 0.95"]),
        (0.99, -0.04, ["accuracy 0.0400 below its source's > export.int8_max_accuracy_drop"]),
        (0.90, -0.05, ["top-1 agreement", "accuracy 0.0500 below"]),
    ],
)
def test_the_int8_gate_names_what_was_lost(agreement: float, delta: float, lost: list) -> None:
    params = make_params(
        export={"int8_min_agreement": 0.95, "int8_max_accuracy_drop": 0.03, "on_int8_loss": "warn"}
    ).export
    message = int8_loss({"val.agreement": agreement, "val.accuracy_delta": delta}, params)
    if not lost:
        assert message is None
        return
    assert message.startswith("the int8 export on val: ") and "\n" not in message
    for part in lost:
        assert part in message
    assert "export.on_int8_loss = warn" in message


def test_the_demo_int8_export_keeps_to_the_gate() -> None:
    """On real images (the demo's committed scores, Fashion-MNIST, remade by `make run`), the
    int8 model keeps to the repository's bounds against its float source, on val and test."""
    params = make_params().export
    scores = read_json(REPO / "metrics" / "exports" / "int8.json")
    assert int8_loss(scores, params) is None
    test = {"val." + key.removeprefix("test."): value for key, value in scores.items()}
    assert int8_loss(test, params) is None
