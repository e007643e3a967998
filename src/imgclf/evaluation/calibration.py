"""Are the probabilities honest? Calibration error, log-loss and Brier score of predicted
probabilities, the reliability table behind the report's diagram, and temperature scaling
(Guo et al. 2017) fitted on val to make over- or under-confident models honest.

Expected calibration error (ECE) is top-label: images binned by their highest probability
into equal-width bins; the gap between each bin's mean confidence and its accuracy, weighted
by the bin's share of images. NLL and Brier come from scikit-learn.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import brier_score_loss, log_loss

from imgclf.data.hdf5io import SplitPredictions

# Ten bins: with a few hundred test images, more leave most bins nearly empty.
BINS = 10
# Temperatures searched (log scale): far beyond what a trained network needs either way.
TEMPERATURE_RANGE = (0.02, 50.0)


@dataclass(frozen=True)
class Reliability:
    """Per non-empty confidence bin: mean confidence, accuracy and image count."""

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def ece(self) -> float:
        total = self.count.sum()
        gaps = np.abs(self.accuracy - self.confidence)
        return float((gaps * self.count).sum() / total) if total else 0.0

    def to_json(self) -> dict[str, list[float]]:
        """The three columns as lists (JSON floats give back the same float64 values)."""
        return {
            "confidence": self.confidence.tolist(),
            "accuracy": self.accuracy.tolist(),
            "count": self.count.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Reliability":
        return cls(
            np.asarray(data["confidence"], dtype=np.float64),
            np.asarray(data["accuracy"], dtype=np.float64),
            np.asarray(data["count"], dtype=np.int64),
        )


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Reliability:
    """Bin the images by top-1 probability into `bins` equal-width bins over [0, 1]."""
    confidence = probabilities.max(axis=1).astype(np.float64)
    correct = probabilities.argmax(axis=1) == labels
    # Bin i holds (i/bins, (i+1)/bins]; a confidence of exactly 0 joins the first bin.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    kept = count > 0
    mean_confidence = np.bincount(index, confidence, minlength=bins)[kept] / count[kept]
    accuracy = np.bincount(index, correct.astype(np.float64), minlength=bins)[kept] / count[kept]
    return Reliability(mean_confidence, accuracy, count[kept])


def _float64(probabilities: np.ndarray) -> np.ndarray:
    """Rows renormalised in float64: float32 rows miss 1 by more than scikit-learn allows."""
    probabilities = probabilities.astype(np.float64)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def calibration_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """`ece`, `nll` (mean negative log-likelihood) and `brier` (mean over images of the
    summed squared error over classes, 0 to 2) of one split."""
    classes = np.arange(probabilities.shape[1])
    probabilities = _float64(probabilities)
    return {
        "ece": reliability(probabilities, labels).ece,
        "nll": log_loss(labels, probabilities, labels=classes),
        # Summed over classes for any class count (scikit-learn halves it for two classes).
        "brier": brier_score_loss(labels, probabilities, labels=classes, scale_by_half=False),
    }


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): T > 1 softens over-confident probabilities, T < 1 sharpens."""
    logits = np.log(np.clip(probabilities.astype(np.float64), 1e-12, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises NLL on these (val) predictions. Argmax is unchanged,
    so accuracy is too; only the confidence moves. Only the ensemble stage calls this (on
    every model's val split, see `ensembling.fit_temperatures`); the rest read its file."""
    classes = np.arange(probabilities.shape[1])

    def nll(log_temperature: float) -> float:
        scaled = apply_temperature(probabilities, float(np.exp(log_temperature)))
        return log_loss(labels, _float64(scaled), labels=classes)

    low, high = np.log(TEMPERATURE_RANGE)
    result = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    return round(float(np.exp(result.x)), 4)


def calibrated(
    splits: dict[str, SplitPredictions], temperature: float
) -> dict[str, SplitPredictions]:
    """Every split's probabilities scaled by `temperature`."""
    return {
        split: SplitPredictions(
            apply_temperature(predictions.probabilities, temperature),
            predictions.labels,
            predictions.paths,
        )
        for split, predictions in splits.items()
    }
