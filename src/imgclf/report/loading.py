"""What the report reads from a pipeline run, loaded and checked: data counts, per-model
metrics, the backbone's model card, training curves and the most confident mistakes.

Loaders of optional inputs return None (or an empty list) when the run did not produce them;
a malformed input is a one-line `UserError` naming the file.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgclf.core.catalogue import metrics_file, pack_file
from imgclf.core.errors import UserError
from imgclf.core.fileio import read_csv, read_json
from imgclf.data.hdf5io import PackReader, SplitPredictions, load_predictions
from imgclf.models.curves import read_curves
from imgclf.models.modelcard import ModelCard

REQUIRED_METRICS = (
    "test.accuracy",
    "test.accuracy_lo",
    "test.accuracy_hi",
    "test.rank1",
    "test.macro_f1",
    "test.nll",
    "test.ece",
    "val.accuracy",
    "val.nll",
)
CURVE_METRICS = ("loss", "accuracy")
CURVE_SPLITS = {"": "train", "val_": "val"}  # column prefix -> the report's name


@dataclass(frozen=True)
class ReportInputs:
    """Where the pipeline left what the report reads (dvc.yaml's report command names each)."""

    index: Path  # metrics/index.json
    split: Path  # metrics/split.json
    rejected: Path  # data/interim/rejected.csv
    metrics: Path  # metrics/evaluation/models/ (one JSON per model)
    summary: Path  # metrics/evaluation/summary.json (ranking, paired comparisons)
    reliability: Path  # metrics/evaluation/reliability.json (the chosen model's)
    predictions: Path  # data/predictions/ (one .h5 per model)
    packs: Path  # data/processed/ ({split}.h5: the test images, the audit's images)
    training: Path  # plots/training/ (curves files)
    backbone: Path  # models/backbone.keras
    logreg_search: Path  # metrics/logreg_search.json
    export: Path  # metrics/export.json (what the export stage wrote)
    exports: Path  # metrics/exports/ (score_export's metrics, one JSON per export)
    latency: Path  # bench/results/export.json (bench/export.py's last run, committed)
    audit: Path  # data/interim/audit.csv
    audit_summary: Path  # metrics/audit.json
    provenance: Path  # metrics/provenance/ (where each trained artifact was made)
    curation: Path  # data/curation.csv (the decisions taken: not proposed again)

    @property
    def test_pack(self) -> Path:
        return pack_file(self.packs, "test")


@dataclass(frozen=True)
class ModelResult:
    name: str  # as under data/predictions, e.g. cnn/seed0
    metrics: dict[str, float]


@dataclass(frozen=True)
class Mistake:
    path: str  # relative to data.source
    true: str
    predicted: str
    probability: float  # of the predicted class


@dataclass(frozen=True)
class Curves:
    """One training run's per-epoch values: {(split, metric): (epochs, values)}."""

    series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]

    @property
    def epochs(self) -> int:
        return max((int(epochs.max()) for epochs, _ in self.series.values()), default=0)


def read_counts(path: Path, keys: tuple[str, ...]) -> dict[str, int]:
    """Whole numbers from a JSON metrics file such as metrics/index.json."""
    data = read_json(path)
    bad = [key for key in keys if not isinstance(data, dict) or type(data.get(key)) is not int]
    if bad:
        raise UserError(f"{path}: expected whole numbers for {', '.join(bad)}")
    return {key: data[key] for key in keys}


def read_rejected(path: Path, count: int) -> pd.DataFrame:
    """The first `count` rows (path, reason) of rejected.csv; none if the file is absent."""
    if not path.is_file():
        return pd.DataFrame({"path": [], "reason": []})
    return read_csv(path, ["path", "reason"]).head(count)


def read_class_names(pack: Path) -> list[str]:
    """The class names of a pack; none if the pack is absent."""
    if not pack.is_file():
        return []
    with PackReader(pack) as reader:
        return reader.label_names


def read_backbone(path: Path) -> ModelCard | None:
    """The backbone's model card (arch, weights, image_size); None if there is no backbone."""
    return ModelCard.read(path) if path.is_file() else None


def load_results(
    names: list[str], folder: Path, summary: dict[str, Any] | None
) -> tuple[list[ModelResult], list[str]]:
    """Metrics of the models that have them, in the ranking the evaluate stage wrote in its
    summary (its choice: best val accuracy first); the names without."""
    results, missing = [], []
    for name in names:
        path = metrics_file(folder, name)
        if not path.is_file():
            missing.append(name)
            continue
        metrics = read_json(path)
        if not isinstance(metrics, dict):
            raise UserError(f"{path}: expected a JSON object of metrics")
        bad = [key for key in REQUIRED_METRICS if not isinstance(metrics.get(key), int | float)]
        if bad:
            raise UserError(f"{path}: no number for {', '.join(bad)}; rerun the evaluate stage")
        results.append(ModelResult(name, metrics))
    ranking = summary["ranking"] if summary else []
    if results and sorted(result.name for result in results) != sorted(ranking):
        raise UserError(
            f"{folder}: metrics of {', '.join(result.name for result in results)}, but the "
            f"evaluate stage's summary ranks {', '.join(ranking) or 'none'}; rerun the evaluate "
            "stage (dvc repro -f -s evaluate)"
        )
    results.sort(key=lambda result: ranking.index(result.name))
    return results, missing


def read_summary(path: Path) -> dict[str, Any] | None:
    """The evaluate stage's summary: its ranking, headed by the chosen model, the rule that
    ranked them and the comparisons with the chosen; None if the run evaluated no model."""
    if not path.is_file():
        return None
    summary = read_json(path)
    ranking = summary.get("ranking") if isinstance(summary, dict) else None
    if (
        not isinstance(ranking, list)
        or not ranking
        or summary.get("chosen") != ranking[0]
        or not isinstance(summary.get("chosen_by"), str)
        or not isinstance(summary.get("vs_chosen"), dict)
    ):
        raise UserError(
            f"{path}: no ranking headed by the chosen model, or no comparisons with it; "
            "rerun the evaluate stage (dvc repro -f -s evaluate)"
        )
    return summary


def load_curves(path: Path) -> Curves | None:
    """A run's curves file (`models.curves`); None if it is absent or has no epoch."""
    if not path.is_file():
        return None
    frame = read_curves(path)
    epochs = frame["epoch"].to_numpy(np.int64)
    series = {
        (split, metric): (epochs, frame[f"{prefix}{metric}"].to_numpy(np.float64))
        for prefix, split in CURVE_SPLITS.items()
        for metric in CURVE_METRICS
    }
    return Curves(series) if len(epochs) else None


def join_phases(first: Curves, second: Curves) -> Curves:
    """One run whose second phase's epochs continue after the first's, on one axis."""
    empty = (np.zeros(0, np.int64), np.zeros(0))
    joined = {}
    for key in sorted(set(first.series) | set(second.series)):
        epochs_a, values_a = first.series.get(key, empty)
        epochs_b, values_b = second.series.get(key, empty)
        joined[key] = (
            np.concatenate([epochs_a, epochs_b + first.epochs]),
            np.concatenate([values_a, values_b]),
        )
    return Curves(joined)


def load_test_predictions(path: Path) -> tuple[SplitPredictions, list[str]]:
    """A model's test predictions and class names, checked to agree with each other."""
    splits, names = load_predictions(path)
    if "test" not in splits:
        raise UserError(f"{path}: no test predictions; rerun its predict stage")
    test = splits["test"]
    rows, classes = test.probabilities.shape if test.probabilities.ndim == 2 else (0, 0)
    labels_fit = len(test.labels) == rows == len(test.paths) and (
        rows == 0 or 0 <= test.labels.min() <= test.labels.max() < len(names)
    )
    if classes != len(names) or not labels_fit:
        raise UserError(
            f"{path}: test probabilities, labels and paths do not fit {len(names)} classes"
        )
    return test, names


def confident_mistakes(
    test: SplitPredictions, label_names: list[str], count: int
) -> list[Mistake]:
    """The `count` wrong predictions with the highest probability, most confident first."""
    predicted = test.probabilities.argmax(axis=1)
    confidence = test.probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != test.labels)
    # Stable: equally confident mistakes stay in file order, so the report is repeatable.
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    return [
        Mistake(
            test.paths[row],
            label_names[test.labels[row]],
            label_names[predicted[row]],
            float(confidence[row]),
        )
        for row in order
    ]


def pack_images(pack: Path, paths: list[str]) -> list[np.ndarray]:
    """The packed (resized, RGB) images of `paths`, found by their source path."""
    with PackReader(pack) as reader:
        rows = {path: row for row, path in enumerate(reader.paths)}
        absent = [path for path in paths if path not in rows]
        if absent:
            raise UserError(
                f"{pack}: has no image {absent[0]!r} of the predictions; rerun the predict stages"
            )
        return [reader.images[rows[path]] for path in paths]
