"""Ensembles: the mean of the members' class probabilities (book ch. 6)."""

from collections.abc import Sequence

import numpy as np

from imgclf.errors import UserError
from imgclf.hdf5io import SplitPredictions


def average_predictions(
    members: Sequence[dict[str, SplitPredictions]], names: Sequence[str]
) -> dict[str, SplitPredictions]:
    """Average the members split by split; they must cover the same rows in the same order."""
    if not members:
        raise UserError("ensemble.members: no members to average")
    first = members[0]
    averaged = {}
    for split, reference in first.items():
        for member, name in zip(members[1:], names[1:], strict=True):
            other = member.get(split)
            if (
                other is None
                or other.paths != reference.paths
                or other.probabilities.shape != reference.probabilities.shape
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
