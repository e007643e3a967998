"""Exports and the models they copy (stage `score_export`): how much the export changed its
source model (top-1 agreement, accuracy delta, largest probability gap against the source's
own centre-crop predictions)."""

from pathlib import Path

import numpy as np

from imgclf.core.catalogue import predictions_file
from imgclf.core.config import ExportParams
from imgclf.core.errors import UserError
from imgclf.data.hdf5io import SplitPredictions, load_predictions, prediction_attrs
from imgclf.evaluation.metrics import model_metrics


def score_exports(exports: Path, predictions: Path, seed: int) -> dict[str, dict[str, float]]:
    """Per export under `exports` (data/predictions/export): its predictions scored like any
    model's (`model_metrics`; no temperature, since none is shipped), plus its comparison
    with the source model's centre-crop predictions on val and test."""
    scores = {}
    for path in sorted(exports.glob("*.h5")):
        splits, label_names = load_predictions(path)
        source_path = predictions_file(predictions, prediction_attrs(path).get("source", ""))
        if not source_path.is_file():
            raise UserError(f"{path}: not an export of one of this run's models; rerun export")
        original, source_names = load_predictions(source_path)
        if source_names != label_names:
            raise UserError(
                f"{path}: classes {label_names}, but {source_path} has "
                f"{source_names}; rerun export (dvc repro)"
            )
        values = model_metrics(splits, len(label_names), seed)
        for split in ("val", "test"):
            values |= export_comparison(splits[split], centre_crop_split(original, split), split)
        scores[path.stem] = values
    return scores


def int8_loss(scores: dict[str, float], params: ExportParams) -> str | None:
    """What the int8 export lost past `export.int8_min_agreement` or
    `export.int8_max_accuracy_drop` on val (its `scores`); None when it kept to both."""
    agreement, drop = scores["val.agreement"], -scores["val.accuracy_delta"]
    losses = []
    if agreement < params.int8_min_agreement:
        losses.append(
            f"top-1 agreement {agreement:.4f} < export.int8_min_agreement "
            f"{params.int8_min_agreement}"
        )
    if drop > params.int8_max_accuracy_drop:
        losses.append(
            f"accuracy {drop:.4f} below its source's > export.int8_max_accuracy_drop "
            f"{params.int8_max_accuracy_drop}"
        )
    if not losses:
        return None
    return (
        f"the int8 export on val: {'; '.join(losses)}; raise export.calibration_images, "
        f"ship float32.tflite instead, or relax the bound (export.on_int8_loss = "
        f"{params.on_int8_loss})"
    )


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
