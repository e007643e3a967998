"""Exports and the models they copy: which model the export stage exports, and how much the
export changed it (top-1 agreement, accuracy delta, largest probability gap against the
source model's own centre-crop predictions)."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imgclf.core.catalogue import predictions_file
from imgclf.core.config import Params
from imgclf.core.errors import UserError
from imgclf.data.hdf5io import SplitPredictions, load_predictions, prediction_attrs
from imgclf.evaluation.metrics import CHOICE_RULE, choose_model, model_metrics

# What summary.json repeats of each export's metrics.
EXPORT_SUMMARY = (
    "test.accuracy",
    "test.accuracy_lo",
    "test.accuracy_hi",
    "test.accuracy_delta",
    "test.agreement",
    "test.max_probability_gap",
)


def model_to_export(params: Params, predictions: Path) -> tuple[str, str]:
    """(name, why): `export.model`, or with `chosen` the single model evaluate's rule picks
    from the predictions (the export stage runs before evaluate, which scores its exports)."""
    if params.export.model != "chosen":
        return params.export.model, "export.model"
    candidates = {}
    for name in params.exportable_models():
        splits, label_names = load_predictions(predictions_file(predictions, name))
        candidates[name] = model_metrics(splits, len(label_names), params.base.seed)
    return choose_model(candidates), CHOICE_RULE


def score_export(
    path: Path, predictions: Path, classes: Sequence[str], params: Params
) -> tuple[str, dict[str, float]]:
    """(source model, metrics): an export's predictions file scored like any model's
    (`model_metrics`), plus its comparison with the source model on test."""
    splits, label_names = load_predictions(path)
    source = prediction_attrs(path).get("source")
    source_path = predictions_file(predictions, source)
    if list(label_names) != list(classes) or not source_path.is_file():
        raise UserError(f"{path}: not an export of one of this run's models; rerun export")
    original, _ = load_predictions(source_path)
    values = model_metrics(splits, len(classes), params.base.seed, params.evaluate.calibrate)
    comparison = export_comparison(splits["test"], centre_crop_split(original, "test"))
    return source, values | comparison


def centre_crop_split(splits: dict[str, SplitPredictions], split: str) -> SplitPredictions:
    """The source's centre-crop predictions of `split`, which an export reproduces: the
    `_1crop` split of a model predicted with 10 crops, else the split itself."""
    return splits.get(f"{split}_1crop", splits[split])


def export_comparison(
    export: SplitPredictions, source: SplitPredictions, prefix: str = "test"
) -> dict[str, float]:
    """`{prefix}.agreement` (fraction of images with the same top-1 class),
    `{prefix}.accuracy_delta` (export minus source) and `{prefix}.max_probability_gap`."""
    if export.paths != source.paths:
        raise UserError(
            "an export and its source model were not evaluated on the same images in the same "
            "order; rerun the export stage (dvc repro)"
        )
    export_top, source_top = export.probabilities.argmax(1), source.probabilities.argmax(1)
    gap = np.abs(export.probabilities.astype(np.float64) - source.probabilities).max()
    values = {
        "agreement": (export_top == source_top).mean(),
        "accuracy_delta": (export_top == export.labels).mean()
        - (source_top == source.labels).mean(),
        "max_probability_gap": gap,
    }
    return {f"{prefix}.{key}": round(float(value), 6) for key, value in values.items()}
