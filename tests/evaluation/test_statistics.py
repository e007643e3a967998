"""Intervals and paired tests against known cases and scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from imgclf.evaluation.statistics import (
    compare_paired,
    macro_f1,
    macro_f1_interval,
    wilson_interval,
)


def test_wilson_interval_of_90_in_100() -> None:
    # Wilson's score interval by hand: centre (p + z²/2n) / (1 + z²/n), z = 1.959964.
    z = 1.959964
    centre = (0.9 + z**2 / 200) / (1 + z**2 / 100)
    half = z / (1 + z**2 / 100) * np.sqrt(0.9 * 0.1 / 100 + z**2 / 40_000)
    assert wilson_interval(90, 100) == pytest.approx((centre - half, centre + half), abs=1e-6)
    assert wilson_interval(90, 100) == pytest.approx((0.8256, 0.9448), abs=1e-4)
    low, high = wilson_interval(100, 100)
    assert high == 1.0 and low == pytest.approx(0.963, abs=1e-3)


def test_mcnemar_against_a_hand_computed_table() -> None:
    # Discordant pairs: A alone right on 10 images, B alone on 2; 30 both right, 8 neither.
    a = np.array([1] * 10 + [0] * 2 + [1] * 30 + [0] * 8, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 30 + [0] * 8, bool)
    result = compare_paired(a, b)
    # Exact two-sided: 2 · P(X ≤ 2), X ~ Binomial(12, 1/2) = 2 · (1 + 12 + 66) / 4096.
    assert result.p_value == pytest.approx(2 * 79 / 4096)
    assert result.significant
    assert result.accuracy_diff == pytest.approx(8 / 50)
    assert result.diff_lo < 8 / 50 < result.diff_hi
    assert result.diff_lo > 0  # the interval agrees with the test here
    same = compare_paired(a, a)
    assert (same.p_value, same.accuracy_diff, same.diff_lo, same.diff_hi) == (1.0, 0, 0, 0)


def test_the_interval_excludes_zero_exactly_when_mcnemar_rejects() -> None:
    """Every split of up to 120 discordant images among 300: the interval and the test never
    disagree (a paired bootstrap did: [-0.093, -0.004] beside p = 0.052 on the demo)."""
    for discordant in range(1, 121):
        for only_a in range(discordant + 1):
            a = np.zeros(300, bool)
            b = np.zeros(300, bool)
            a[:only_a] = True
            b[only_a:discordant] = True
            result = compare_paired(a, b)
            excludes_zero = result.diff_lo > 0 or result.diff_hi < 0
            assert excludes_zero == result.significant, (discordant, only_a, result)
            assert result.diff_lo <= result.accuracy_diff <= result.diff_hi


def test_the_demo_pair_whose_bootstrap_interval_contradicted_its_test() -> None:
    """cnn/seed1 against logreg on the demo's 225 test images: 8 images only cnn/seed1 got
    right, 19 only logreg; McNemar's p = 0.052 (not significant), yet the paired bootstrap
    gave [-0.093, -0.004]. The interval now includes 0."""
    a = np.array([True] * 8 + [False] * 19 + [True] * 160 + [False] * 38)
    b = np.array([False] * 8 + [True] * 19 + [True] * 160 + [False] * 38)
    result = compare_paired(a, b)
    assert result.p_value == pytest.approx(0.052239, abs=1e-6)
    assert not result.significant
    assert result.diff_lo < 0 < result.diff_hi


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_vectorised_macro_f1_matches_scikit_learn(classes: int) -> None:
    rng = np.random.default_rng(classes)
    labels = rng.integers(0, classes, (4, 30))
    predicted = np.where(rng.random((4, 30)) < 0.6, labels, rng.integers(0, classes, (4, 30)))
    expected = [
        f1_score(y, p, average="macro", labels=np.arange(classes), zero_division=0)
        for y, p in zip(labels, predicted, strict=True)
    ]
    assert macro_f1(labels, predicted, classes) == pytest.approx(expected)
    assert macro_f1(labels[0], predicted[0], classes) == pytest.approx(expected[0])


def test_macro_f1_interval_covers_the_value_and_narrows_with_more_images() -> None:
    rng = np.random.default_rng(0)

    def width(size: int) -> float:
        labels = rng.integers(0, 5, size)
        predicted = np.where(rng.random(size) < 0.8, labels, rng.integers(0, 5, size))
        low, high = macro_f1_interval(labels, predicted, 5, seed=0)
        assert low <= macro_f1(labels, predicted, 5) <= high
        return high - low

    assert width(2000) < width(100) / 2
