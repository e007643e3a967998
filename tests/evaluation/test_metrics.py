"""Metrics against hand-computed cases: ties, a class never predicted, 2-class data; the
model chosen on val and the comparisons with it."""

import numpy as np
import pytest

from imgclf.data.hdf5io import SplitPredictions
from imgclf.evaluation.metrics import (
    choose_model,
    confusion_rows,
    model_metrics,
    per_class_metrics,
    split_metrics,
    summarize,
)


def predictions(rows: list[list[float]], labels: list[int]) -> SplitPredictions:
    return SplitPredictions(
        np.asarray(rows, np.float32), np.asarray(labels), [f"{i}.png" for i in range(len(labels))]
    )


def test_two_classes_have_no_rank5() -> None:
    metrics = split_metrics(predictions([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2]], [0, 1, 1]), 2, 0)
    assert "rank5" not in metrics
    assert metrics["accuracy"] == metrics["rank1"] == pytest.approx(2 / 3, abs=1e-6)
    assert metrics["macro_f1"] == pytest.approx((0.666667 + 0.666667) / 2, abs=1e-5)
    assert metrics["accuracy_lo"] < 2 / 3 < metrics["accuracy_hi"]


def test_rank5_and_a_class_never_predicted() -> None:
    # 7 classes; class 6 is never predicted. Row 0: true 0 ranked 1st. Row 1: true 6
    # ranked 6th (outside the top 5). Row 2: true 3 ranked 2nd.
    rows = [
        [0.7, 0.1, 0.05, 0.05, 0.04, 0.03, 0.03],
        [0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05],
        [0.1, 0.6, 0.05, 0.2, 0.02, 0.02, 0.01],
    ]
    metrics = split_metrics(predictions(rows, [0, 6, 3]), 7, 0)
    assert metrics["accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert metrics["rank5"] == pytest.approx(2 / 3, abs=1e-6)
    # F1 per class over all 7 classes: class 0 has P=1/2 (rows 0, 1 predicted 0), R=1.
    assert metrics["macro_f1"] == pytest.approx((2 / 3) / 7, abs=1e-5)
    # Recall over the classes present: 1 for class 0, 0 for classes 3 and 6.
    assert metrics["balanced_accuracy"] == pytest.approx(1 / 3, abs=1e-6)


def test_balanced_accuracy_weighs_every_class_alike() -> None:
    # 8 of class 0 all right, 2 of class 1 all wrong: accuracy 0.8, balanced 0.5.
    rows = [[0.9, 0.1]] * 10
    metrics = split_metrics(predictions(rows, [0] * 8 + [1] * 2), 2, 0)
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert metrics["balanced_accuracy"] == pytest.approx(0.5)


def test_flat_keys_and_confusion_rows() -> None:
    split = predictions([[0.9, 0.1], [0.2, 0.8]], [0, 0])
    metrics = model_metrics({"val": split, "test": split}, 2, seed=0)
    per_split = [
        "accuracy",
        "accuracy_hi",
        "accuracy_lo",
        "balanced_accuracy",
        "brier",
        "ece",
        "macro_f1",
        "macro_f1_hi",
        "macro_f1_lo",
        "nll",
        "rank1",
    ]
    assert sorted(metrics) == [f"{split}.{key}" for split in ("test", "val") for key in per_split]
    scaled = model_metrics({"val": split, "test": split}, 2, seed=0, temperature=1.5)
    assert set(scaled) - set(metrics) == {
        "temperature",
        "test.brier_scaled",
        "test.ece_scaled",
        "test.nll_scaled",
    }
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


def test_the_choice_is_made_on_val_never_on_test() -> None:
    metrics = {
        "a": {"test.accuracy": 0.99, "val.accuracy": 0.7, "val.nll": 0.5},
        "b": {"test.accuracy": 0.6, "val.accuracy": 0.8, "val.nll": 0.9},
        "c": {"test.accuracy": 0.7, "val.accuracy": 0.8, "val.nll": 0.4},
    }
    assert choose_model(metrics) == "c"  # b ties on val accuracy with a worse val NLL


def test_summary_compares_every_model_with_the_chosen_one() -> None:
    labels = np.arange(40) % 2
    right = np.eye(2, dtype=np.float32)[labels] * 0.8 + 0.1  # always right

    def model(wrong: int) -> SplitPredictions:
        rows = right.copy()
        rows[:wrong] = rows[:wrong, ::-1]  # the first `wrong` images flipped
        return SplitPredictions(rows, labels, [f"{i}.png" for i in range(40)])

    tests = {"good": model(0), "bad": model(12), "ensemble": model(1), "member": model(2)}
    metrics = {
        name: {"val.accuracy": value, "val.nll": 0.3, "test.accuracy": 1.0}
        | {"test.accuracy_lo": 0.9, "test.accuracy_hi": 1.0}
        for name, value in (("good", 0.9), ("bad", 0.5), ("ensemble", 0.8), ("member", 0.7))
    }
    summary = summarize(metrics, tests, ["member"])
    assert summary["chosen"] == "good"
    bad = summary["vs_chosen"]["bad"]
    assert (bad["only_this_right"], bad["only_other_right"]) == (0, 12)
    assert bad["accuracy_diff"] == pytest.approx(-0.3)
    assert bad["significant"] and bad["p_value"] == pytest.approx(2 * 0.5**12, abs=1e-6)
    assert not summary["vs_chosen"]["ensemble"]["significant"]
    # One image better than its best member is no evidence of being better.
    ensemble = summary["ensemble"]
    assert ensemble["best_member"] == "member"
    assert ensemble["accuracy_diff"] == pytest.approx(0.025)
    assert not ensemble["beats_best_member"]
