"""Metrics of predicted probabilities: accuracy, rank-1, rank-5, macro-F1 (scikit-learn)."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score

from imgclf.hdf5io import SplitPredictions


def split_metrics(predictions: SplitPredictions, classes: int) -> dict[str, float]:
    """Headline metrics of one split. Rank-5 only exists with more than five classes."""
    labels, probabilities = predictions.labels, predictions.probabilities
    predicted = probabilities.argmax(axis=1)
    everything = np.arange(classes)
    # scikit-learn wants the positive class's score alone for two classes.
    scores = probabilities[:, 1] if classes == 2 else probabilities
    metrics = {
        "accuracy": accuracy_score(labels, predicted),
        "rank1": top_k_accuracy_score(labels, scores, k=1, labels=everything),
        "macro_f1": f1_score(
            labels, predicted, average="macro", labels=everything, zero_division=0
        ),
    }
    if classes > 5:
        metrics["rank5"] = top_k_accuracy_score(labels, probabilities, k=5, labels=everything)
    return {key: round(float(value), 6) for key, value in metrics.items()}


def model_metrics(splits: dict[str, SplitPredictions], classes: int) -> dict[str, float]:
    """Flat keys such as `test.accuracy`, so `dvc metrics diff` lines models up."""
    return {
        f"{split}.{key}": value
        for split, predictions in sorted(splits.items())
        for key, value in split_metrics(predictions, classes).items()
    }


def confusion_rows(predictions: SplitPredictions, label_names: Sequence[str]) -> pd.DataFrame:
    """One (actual, predicted) row per image, for DVC's confusion-matrix plot."""
    names = np.asarray(label_names)
    return pd.DataFrame(
        {
            "actual": names[predictions.labels],
            "predicted": names[predictions.probabilities.argmax(axis=1)],
        }
    )
