"""Metrics of predicted probabilities: accuracy, rank-1, rank-5, macro-F1, per-class
precision/recall/F1 (scikit-learn), and a ranking of the models."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from imgclf.data.hdf5io import SplitPredictions


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


def per_class_metrics(
    splits: dict[str, SplitPredictions], label_names: Sequence[str]
) -> dict[str, float]:
    """Flat `test.<class>.precision|recall|f1|support` keys for every split and class."""
    metrics: dict[str, float] = {}
    for split, predictions in sorted(splits.items()):
        values = precision_recall_fscore_support(
            predictions.labels,
            predictions.probabilities.argmax(axis=1),
            labels=np.arange(len(label_names)),
            zero_division=0,
        )
        for name, precision, recall, f1, support in zip(label_names, *values, strict=True):
            metrics |= {
                f"{split}.{name}.precision": round(float(precision), 6),
                f"{split}.{name}.recall": round(float(recall), 6),
                f"{split}.{name}.f1": round(float(f1), 6),
                f"{split}.{name}.support": int(support),
            }
    return metrics


def ranking(metrics: dict[str, dict[str, float]]) -> dict[str, object]:
    """Models ordered by test accuracy (ties: val accuracy, then name), best first."""
    order = sorted(
        metrics,
        key=lambda name: (
            -metrics[name]["test.accuracy"],
            -metrics[name].get("val.accuracy", 0.0),
            name,
        ),
    )
    return {
        "best": order[0],
        "test_accuracy": {name: metrics[name]["test.accuracy"] for name in order},
        "rank": {name: index + 1 for index, name in enumerate(order)},
    }
