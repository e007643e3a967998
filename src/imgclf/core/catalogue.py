"""The catalogue: every model the pipeline makes, by name (`cnn/seed0`, `finetune`, `logreg`,
`ensemble`), and where its files lie inside the folders dvc.yaml passes to the stages (model,
predictions, training curves, metrics). Stages, serving, the report and the tests all ask here."""

import re
from collections.abc import Sequence
from pathlib import Path

CNN_PREFIX = "cnn/seed"
SINGLE_MODELS = ("logreg", "finetune")  # the trained models besides the cnn seeds
ENSEMBLE = "ensemble"
_CNN = re.compile(r"cnn/seed(\d+)")


def cnn_name(seed: int) -> str:
    """The name of the cnn trained with `seed`, e.g. cnn/seed0."""
    return f"{CNN_PREFIX}{seed}"


def cnn_seed(name: str) -> int | None:
    """The seed of a cnn's name; None for any other model."""
    match = _CNN.fullmatch(name)
    return int(match[1]) if match else None


def model_names(seeds: Sequence[int]) -> list[str]:
    """Every model with predictions: the cnn seeds, logreg, finetune, then the ensemble."""
    return [*map(cnn_name, seeds), *SINGLE_MODELS, ENSEMBLE]


def model_file(models: Path, name: str) -> Path:
    """A trained model's file under `models` (the ensemble has none: it is an average)."""
    return models / f"{name}{'.skops' if name == 'logreg' else '.keras'}"


def predictions_file(predictions: Path, name: str) -> Path:
    """A model's val/test predictions under `predictions` (data/predictions)."""
    return predictions / f"{name}.h5"


def temperatures_file(predictions: Path) -> Path:
    """Every model's val-fitted temperature, beside the predictions (written by `ensemble`)."""
    return predictions / "temperatures.json"


def curves_path(training: Path, name: str) -> Path:
    """A trained model's curves under `training` (plots/training): one CSV file, or for
    finetune a folder of one CSV per phase (warmup.csv, finetune.csv)."""
    return training / (name if name == "finetune" else f"{name}.csv")


def trained_artifacts(seeds: Sequence[int]) -> list[str]:
    """Every artifact a stage trains or converts, each with its provenance record: the
    backbone, the cnn seeds, logreg, finetune and the export."""
    return ["backbone", *map(cnn_name, seeds), *SINGLE_MODELS, "export"]


def provenance_file(provenance: Path, name: str) -> Path:
    """Where an artifact (`trained_artifacts`) was made, under `provenance`
    (metrics/provenance): written by the stage that made it."""
    return provenance / f"{name}.json"


def pack_file(packs: Path, split: str) -> Path:
    """A split's pack (or features) file under `packs` (data/processed, data/features)."""
    return packs / f"{split}.h5"


def metrics_file(metrics: Path, name: str) -> Path:
    """A model's headline metrics under `metrics` (metrics/evaluation/models)."""
    return metrics / f"{name}.json"


def seed_files(seeds: Sequence[int]) -> dict[str, list[str]]:
    """The file names the cnn seeds own in their folders: predictions (data/predictions/cnn),
    models with their training state (models/cnn), curves (plots/training/cnn) and
    provenance (metrics/provenance/cnn), for pruning the seeds dropped."""
    names = [name.removeprefix("cnn/") for name in map(cnn_name, seeds)]
    return {
        "predictions": [f"{name}.h5" for name in names],
        "models": [file for name in names for file in (f"{name}.keras", f"{name}.keras.state")],
        "curves": [f"{name}.csv" for name in names],
        "provenance": [f"{name}.json" for name in names],
    }
