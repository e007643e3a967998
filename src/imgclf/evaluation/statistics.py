"""How sure the metrics are: 95 % intervals and paired tests over the evaluated images.

Accuracy and rank-5 are fractions of images, so they get Wilson score intervals (close to
exact at any size, never outside [0, 1]). Macro-F1 is not a mean over images, so it gets a
seeded percentile bootstrap over the images. Two models on the same images are compared
with McNemar's exact test (a binomial test on the images only one of them gets right) and the
interval of their accuracy difference that inverts that same test (Clopper-Pearson on the
discordant images), so that the interval excludes 0 exactly when the test rejects. All of it
is scipy.stats; the images are treated as independent draws from the population the split
stands for.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, bootstrap

CONFIDENCE = 0.95
RESAMPLES = 2000
# Resamples per vectorised call: bounds memory at BATCH × images integers.
BATCH = 200


def wilson_interval(successes: int, total: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion `successes / total`."""
    interval = binomtest(successes, total).proportion_ci(CONFIDENCE, method="wilson")
    return float(interval.low), float(interval.high)


def macro_f1(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Macro-F1 over `classes` along the last axis, any leading (resample) axes; as
    scikit-learn's `f1_score(average="macro", labels=range(classes), zero_division=0)`.
    Counted with one bincount per quantity, so bootstrap batches stay cheap at many classes."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    rows = labels.reshape(-1, labels.shape[-1])
    guesses = predicted.reshape(rows.shape)
    offsets = np.arange(len(rows))[:, None] * classes
    size = len(rows) * classes

    def counts(index: np.ndarray) -> np.ndarray:
        return np.bincount(index, minlength=size).reshape(len(rows), classes)

    true, guessed = counts((offsets + rows).ravel()), counts((offsets + guesses).ravel())
    hits = counts((offsets + rows)[rows == guesses])
    # F1 = 2 tp / (2 tp + fp + fn) = 2 tp / (true + guessed); 0 where a class is absent.
    f1 = np.divide(2.0 * hits, true + guessed, out=np.zeros(true.shape), where=true + guessed > 0)
    return f1.mean(axis=-1).reshape(labels.shape[:-1])


def macro_f1_interval(
    labels: np.ndarray, predicted: np.ndarray, classes: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of macro-F1, resampling images (pairs kept)."""
    if len(labels) < 2:
        value = float(macro_f1(labels, predicted, classes))
        return value, value
    return _percentile_bootstrap(
        (labels, predicted), lambda y, p, axis=-1: macro_f1(y, p, classes), seed
    )


def _percentile_bootstrap(
    samples: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray], seed: int
) -> tuple[float, float]:
    """95 % percentile interval of a vectorised `statistic`, resampling the rows of
    `samples` together (pairs kept), seeded."""
    interval = bootstrap(
        samples,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        batch=BATCH,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return float(interval.low), float(interval.high)


@dataclass(frozen=True)
class PairedComparison:
    """Model A against model B on the same images (A minus B)."""

    accuracy_diff: float
    diff_lo: float
    diff_hi: float
    only_a_right: int  # images A gets right and B wrong
    only_b_right: int
    p_value: float  # McNemar's exact test, two-sided

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - CONFIDENCE

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            "accuracy_diff": round(self.accuracy_diff, 6),
            "accuracy_diff_lo": round(self.diff_lo, 6),
            "accuracy_diff_hi": round(self.diff_hi, 6),
            "only_this_right": self.only_a_right,
            "only_other_right": self.only_b_right,
            "p_value": round(self.p_value, 6),
            "significant": self.significant,
        }


def compare_paired(correct_a: np.ndarray, correct_b: np.ndarray) -> PairedComparison:
    """McNemar's exact test of accuracy(A) − accuracy(B) and the interval that inverts it.

    Of the n images only one model gets right, A gets k: under "equally good" k is
    Binomial(n, 1/2). The difference is n (2 p − 1) / N with p the chance that a discordant
    image is A's; the exact (Clopper-Pearson) interval of p maps to the difference's interval,
    conditional on n. (A paired bootstrap interval could exclude 0 beside p = 0.052.)"""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    discordant, total = only_a + only_b, max(len(correct_a), 1)
    difference = (only_a - only_b) / total
    if not discordant:  # identical on every image: the interval is a point
        return PairedComparison(difference, difference, difference, 0, 0, 1.0)
    test = binomtest(only_a, discordant)
    share = test.proportion_ci(confidence_level=CONFIDENCE, method="exact")
    low, high = (discordant * (2 * bound - 1) / total for bound in (share.low, share.high))
    return PairedComparison(difference, low, high, only_a, only_b, float(min(test.pvalue, 1.0)))
