"""Metrics against hand-computed cases: ties, a class never predicted, 2-class data."""

import numpy as np
import pytest

from imgclf.data.hdf5io import SplitPredictions
from imgclf.evaluation.metrics import (
    confusion_rows,
    model_metrics,
    per_class_metrics,
    ranking,
    split_metrics,
)


def predictions(rows: list[list[float]], labels: list[int]) -> SplitPredictions:
    return SplitPredictions(
        np.asarray(rows, np.float32), np.asarray(labels), [f"{i}.png" for i in range(len(labels))]
    )


def test_two_classes_have_no_rank5() -> None:
    metrics = split_metrics(predictions([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2]], [0, 1, 1]), 2)
    assert metrics == {
        "accuracy": pytest.approx(2 / 3, abs=1e-6),
        "rank1": pytest.approx(2 / 3, abs=1e-6),
        "macro_f1": pytest.approx((0.666667 + 0.666667) / 2, abs=1e-5),
    }


def test_rank5_and_a_class_never_predicted() -> None:
    # 7 classes; class 6 is never predicted. Row 0: true 0 ranked 1st. Row 1: true 6
    # ranked 6th (outside the top 5). Row 2: true 3 ranked 2nd.
    rows = [
        [0.7, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03],
        [0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05],
        [0.1, 0.6, 0.05, 0.2, 0.02, 0.02, 0.01],
    ]
    metrics = split_metrics(predictions(rows, [0, 6, 3]), 7)
    assert metrics["accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert metrics["rank5"] == pytest.approx(2 / 3, abs=1e-6)
    # F1 per class over all 7 classes: class 0 has P=1/2 (rows 0, 1 predicted 0), R=1.
    assert metrics["macro_f1"] == pytest.approx((2 / 3) / 7, abs=1e-5)


def test_flat_keys_and_confusion_rows() -> None:
    split = predictions([[0.9, 0.1], [0.2, 0.8]], [0, 0])
    metrics = model_metrics({"val": split, "test": split}, 2)
    assert sorted(metrics) == [
        "test.accuracy",
        "test.macro_f1",
        "test.rank1",
        "val.accuracy",
        "val.macro_f1",
        "val.rank1",
    ]
    rows = confusion_rows(split, ["cat", "dog"])
    assert rows.to_dict("records") == [
        {"actual": "cat", "predicted": "cat"},
        {"actual": "cat", "predicted": "dog"},
    ]


def test_per_class_metrics_by_hand() -> None:
    split = predictions([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0, 1, 1])
    metrics = per_class_metrics({"test": split}, ["cat", "dog"])
    assert metrics == {
        "test.cat.precision": 0.5,
        "test.cat.recall": 1.0,
        "test.cat.f1": pytest.approx(0.666667, abs=1e-6),
        "test.cat.support": 1,
        "test.dog.precision": 1.0,
        "test.dog.recall": 0.5,
        "test.dog.f1": pytest.approx(0.666667, abs=1e-6),
        "test.dog.support": 2,
    }


def test_ranking_orders_by_test_then_val_accuracy() -> None:
    metrics = {
        "a": {"test.accuracy": 0.8, "val.accuracy": 0.7},
        "b": {"test.accuracy": 0.9, "val.accuracy": 0.6},
        "c": {"test.accuracy": 0.8, "val.accuracy": 0.75},
    }
    assert ranking(metrics) == {
        "best": "b",
        "test_accuracy": {"b": 0.9, "c": 0.8, "a": 0.8},
        "rank": {"b": 1, "c": 2, "a": 3},
    }
