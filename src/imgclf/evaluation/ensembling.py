"""Ensembles: every model's temperature fitted on val, the mean of the members' (scaled)
class probabilities (book ch. 6), and the files of cnn seeds that params no longer name.
Stage `ensemble` calls `build_ensemble`; it is the one stage that fits temperatures."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.core.catalogue import ENSEMBLE, predictions_file, seed_files
from imgclf.core.config import Params
from imgclf.core.errors import UserError
from imgclf.core.fileio import remove_stale
from imgclf.data.hdf5io import SplitPredictions, load_predictions
from imgclf.evaluation.calibration import calibrated, fit_temperature

log = logging.getLogger("imgclf.evaluation.ensembling")


def remove_dropped_seeds(
    seeds: Sequence[int], predictions: Path, models: Path, curves: Path, provenance: Path
) -> None:
    """The predictions, models, training states, curves and provenance records of seeds no
    longer in cnn.seeds (no stage makes them now). Stage `ensemble` calls this, the first
    stage after the seeds that reads these folders (it lists them as dependencies, but for
    the committed provenance), so they are gone before DVC hashes them for it or any later
    stage, and the lock holds what a fresh clone has."""
    owned = seed_files(seeds)
    kept = {
        predictions: owned["predictions"],
        models: owned["models"],
        curves: owned["curves"],
        provenance: owned["provenance"],
    }
    for folder, keep in kept.items():
        if removed := remove_stale(folder, keep):
            log.info("removed what dropped seeds left in %s: %s", folder, ", ".join(removed))


@dataclass(frozen=True)
class Ensemble:
    """The ensemble's predictions, its classes and every model's val-fitted temperature
    (the ensemble's own included; empty without `evaluate.calibrate: temperature`)."""

    splits: dict[str, SplitPredictions]
    label_names: list[str]
    temperatures: dict[str, float]


def build_ensemble(params: Params, predictions: Path) -> Ensemble:
    """Fit every single model's temperature on val when `evaluate.calibrate: temperature`,
    average the members named in params (scaled first), then fit the ensemble's own."""
    loaded = {
        name: load_predictions(predictions_file(predictions, name))
        for name in params.predicted_models()
        if name != ENSEMBLE
    }
    names = params.ensemble_members()
    label_names = loaded[names[0]][1]
    for name, (_, other) in loaded.items():
        if other != label_names:
            raise UserError(
                f"{predictions_file(predictions, name)}: classes {other}, but "
                f"{names[0]!r} has {label_names}: rerun their stages on the same packs "
                "(dvc repro)"
            )
    calibrate = params.evaluate.calibrate == "temperature"
    members = [loaded[name][0] for name in names]
    temperatures: dict[str, float] = {}
    if calibrate:
        temperatures = {name: val_temperature(splits) for name, (splits, _) in loaded.items()}
        members = [
            calibrated(member, temperatures[name])
            for member, name in zip(members, names, strict=True)
        ]
    averaged = average_predictions(members, names)
    if calibrate:
        temperatures[ENSEMBLE] = val_temperature(averaged)
    return Ensemble(averaged, label_names, temperatures)


def val_temperature(splits: dict[str, SplitPredictions]) -> float:
    """The temperature fitted on a model's val predictions."""
    return fit_temperature(splits["val"].probabilities, splits["val"].labels)


def average_predictions(
    members: Sequence[dict[str, SplitPredictions]], names: Sequence[str]
) -> dict[str, SplitPredictions]:
    """Average the members over the splits they all have; rows must match in order."""
    if not members:
        raise UserError("ensemble.members: no members to average")
    # Splits every member has: a 10-crop CNN also carries centre-crop splits, logreg not.
    shared = set.intersection(*(set(member) for member in members))
    averaged = {}
    for split in sorted(shared):
        reference = members[0][split]
        for member, name in zip(members[1:], names[1:], strict=True):
            other = member[split]
            if other.paths != reference.paths or other.probabilities.shape != (
                reference.probabilities.shape
            ):
                raise UserError(
                    f"ensemble member {name!r} does not cover the same {split} "
                    f"images as {names[0]!r}; rerun its predict stage"
                )
        stacked = np.stack([member[split].probabilities for member in members])
        averaged[split] = SplitPredictions(
            stacked.mean(axis=0, dtype=np.float64).astype(np.float32),
            reference.labels,
            reference.paths,
        )
    return averaged
