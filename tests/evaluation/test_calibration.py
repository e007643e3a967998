"""Calibration metrics against constructed predictors, and temperature scaling."""

import numpy as np
import pytest

from imgclf.evaluation.calibration import (
    apply_temperature,
    calibration_metrics,
    fit_temperature,
    reliability,
)


def confident(confidence: float, correct: int, total: int, classes: int = 4) -> tuple:
    """`total` images, each predicted with probability `confidence` for its top class (the
    rest spread evenly); the first `correct` of them right."""
    labels = np.arange(total) % classes
    predicted = labels.copy()
    predicted[correct:] = (labels[correct:] + 1) % classes
    rows = np.full((total, classes), (1 - confidence) / (classes - 1), np.float32)
    rows[np.arange(total), predicted] = confidence
    return rows, labels


def test_perfectly_calibrated_has_no_error_and_miscalibrated_its_gap() -> None:
    rows, labels = confident(0.8, 80, 100)
    assert calibration_metrics(rows, labels)["ece"] == pytest.approx(0.0, abs=1e-6)
    rows, labels = confident(0.9, 60, 100)  # 90 % sure, 60 % right: over-confident by 0.3
    assert calibration_metrics(rows, labels)["ece"] == pytest.approx(0.3, abs=1e-6)
    # Two bins, each calibrated on its own: still no error.
    low, high = confident(0.4, 40, 100), confident(0.95, 95, 100)
    rows, labels = np.concatenate([low[0], high[0]]), np.concatenate([low[1], high[1]])
    table = reliability(rows, labels)
    assert table.count.tolist() == [100, 100]
    assert table.ece == pytest.approx(0.0, abs=1e-6)


def test_nll_and_brier_by_hand() -> None:
    rows, labels = confident(0.7, 2, 2, classes=2)  # both right with 0.7
    metrics = calibration_metrics(rows, labels)
    assert metrics["nll"] == pytest.approx(-np.log(0.7), abs=1e-6)
    assert metrics["brier"] == pytest.approx(0.3**2 + 0.3**2, abs=1e-6)


def test_temperature_scaling_lowers_nll_of_an_over_confident_model() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 500)
    logits = rng.normal(size=(500, 5))
    logits[np.arange(500), labels] += 1.5  # right about 70 % of the time
    over_confident = np.exp(5 * logits)  # then made five times too sharp
    probabilities = (over_confident / over_confident.sum(axis=1, keepdims=True)).astype(np.float32)
    temperature = fit_temperature(probabilities, labels)
    assert 3 < temperature < 8  # it undoes most of the sharpening
    scaled = apply_temperature(probabilities, temperature)
    before, after = calibration_metrics(probabilities, labels), calibration_metrics(scaled, labels)
    assert after["nll"] < 0.6 * before["nll"]
    # The fit is the minimum: no worse than the temperature that undoes the sharpening.
    assert (
        after["nll"]
        <= calibration_metrics(apply_temperature(probabilities, 5), labels)["nll"] + 1e-6
    )
    assert after["ece"] < before["ece"] / 2
    assert (scaled.argmax(axis=1) == probabilities.argmax(axis=1)).all()  # accuracy kept
