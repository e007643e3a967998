"""Ensembles: the mean of the members' class probabilities (book ch. 6), and the files of
members that params no longer name."""

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imgclf.core.catalogue import seed_files
from imgclf.core.errors import UserError
from imgclf.core.fileio import remove_stale
from imgclf.data.hdf5io import SplitPredictions

log = logging.getLogger("imgclf.evaluation.ensembling")


def remove_dropped_seeds(seeds: Sequence[int], predictions: Path, models: Path) -> None:
    """The predictions, models and training states of seeds no longer in cnn.seeds (no stage
    makes them now): gone before DVC hashes the dependencies of the stage that calls this
    (ensemble, and export, which reads the same folders and may run first), so the lock
    holds what a fresh clone has."""
    owned = seed_files(seeds)
    kept = {predictions: owned["predictions"], models: owned["models"]}
    for folder, keep in kept.items():
        if removed := remove_stale(folder, keep):
            log.info("removed what dropped seeds left in %s: %s", folder, ", ".join(removed))


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
