"""Metrics of predicted probabilities: accuracy, rank-1, rank-5, macro-F1 with their 95 %
intervals, calibration (ECE, NLL, Brier), per-class precision/recall/F1 (scikit-learn), and
the model chosen on val with every other model compared to it on test."""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from imgclf.core.errors import UserError
from imgclf.data.hdf5io import SplitPredictions
from imgclf.evaluation.calibration import apply_temperature, calibration_metrics
from imgclf.evaluation.statistics import compare_paired, macro_f1_interval, wilson_interval

CHOICE_RULE = "val accuracy; ties: lower val NLL, then name"


def split_metrics(predictions: SplitPredictions, classes: int, seed: int) -> dict[str, float]:
    """Headline metrics of one split, each with `_lo`/`_hi` 95 % bounds (Wilson for the
    fractions of images, bootstrap for macro-F1), and calibration. Rank-5 only exists with
    more than five classes."""
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
        # The mean of per-class recalls: accuracy as if every class were equally common.
        "balanced_accuracy": balanced_accuracy_score(labels, predicted),
    }
    metrics["accuracy_lo"], metrics["accuracy_hi"] = wilson_interval(
        int((predicted == labels).sum()), len(labels)
    )
    metrics["macro_f1_lo"], metrics["macro_f1_hi"] = macro_f1_interval(
        labels, predicted, classes, seed
    )
    if classes > 5:
        hits = top_k_accuracy_score(labels, probabilities, k=5, labels=everything, normalize=False)
        metrics["rank5"] = hits / len(labels)
        metrics["rank5_lo"], metrics["rank5_hi"] = wilson_interval(int(hits), len(labels))
    metrics |= calibration_metrics(probabilities, labels)
    return {key: round(float(value), 6) for key, value in metrics.items()}


def model_metrics(
    splits: dict[str, SplitPredictions],
    classes: int,
    seed: int,
    temperature: float | None = None,
) -> dict[str, float]:
    """Flat keys such as `test.accuracy`, so `dvc metrics diff` lines models up. With a
    `temperature` (fitted on val by the ensemble stage): it, and test's calibration after
    it (`test.ece_scaled`, ...)."""
    metrics = {
        f"{split}.{key}": value
        for split, predictions in sorted(splits.items())
        for key, value in split_metrics(predictions, classes, seed).items()
    }
    if temperature is not None:
        test = splits["test"]
        scaled = calibration_metrics(
            apply_temperature(test.probabilities, temperature), test.labels
        )
        metrics["temperature"] = temperature
        metrics |= {f"test.{key}_scaled": round(float(value), 6) for key, value in scaled.items()}
    return metrics


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


def choice_order(metrics: dict[str, dict[str, float]]) -> list[str]:
    """Models best first by val accuracy (ties: lower val NLL, then name). Never by test: a
    choice made on test flatters the chosen model's test score."""
    return sorted(
        metrics, key=lambda name: (-metrics[name]["val.accuracy"], metrics[name]["val.nll"], name)
    )


def choose_model(metrics: dict[str, dict[str, float]]) -> str:
    """The pipeline's answer: the first model in `choice_order`."""
    return choice_order(metrics)[0]


def summarize(
    metrics: dict[str, dict[str, float]],
    tests: dict[str, SplitPredictions],
    members: Sequence[str],
) -> dict[str, object]:
    """The chosen model with its test accuracy and interval; the ranking it heads (what the
    report orders its tables by); every other model against it on the same test images
    (McNemar's exact test and the interval of the accuracy difference that inverts it); and
    whether the ensemble beat its best member (chosen the same way)."""
    ranking = choice_order(metrics)
    chosen = ranking[0]
    reference = tests[chosen]
    for name, test in tests.items():
        if test.paths != reference.paths:
            raise UserError(
                f"{name} and {chosen} were not evaluated on the same test images in the same "
                f"order; rerun their predict stages (dvc repro)"
            )

    def correct(name: str) -> np.ndarray:
        return tests[name].probabilities.argmax(axis=1) == tests[name].labels

    summary: dict[str, object] = {
        "chosen": chosen,
        "chosen_by": CHOICE_RULE,
        "ranking": ranking,
        **{
            key: metrics[chosen][key]
            for key in ("test.accuracy", "test.accuracy_lo", "test.accuracy_hi")
        },
        "vs_chosen": {
            name: compare_paired(correct(name), correct(chosen)).as_dict()
            for name in sorted(metrics)
            if name != chosen
        },
    }
    present = [member for member in members if member in metrics]
    if "ensemble" in metrics and present:
        best = choose_model({member: metrics[member] for member in present})
        versus = compare_paired(correct("ensemble"), correct(best))
        summary["ensemble"] = {
            "best_member": best,
            **versus.as_dict(),
            "beats_best_member": versus.significant and versus.accuracy_diff > 0,
        }
    return summary
