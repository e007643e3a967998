"""The audit's model-based half: likely label errors, near-duplicates the hashes miss (crops,
recolouring) and outliers, found by cleanlab's Datalab from the backbone's features and
out-of-fold predicted probabilities.

The probabilities come from the pipeline's own logistic regression (models/logistic.py, with
the C that the `logreg` stage chose), fitted k times, each time predicting the fold it did not
see: confident learning needs probabilities for images the model was not trained on.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from cleanlab import Datalab
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from imgclf.data.hdf5io import load_features
from imgclf.errors import UserError
from imgclf.models.logistic import build_logreg


@dataclass(frozen=True)
class LabelledFeatures:
    """Feature vectors of every audited image, with integer labels and the class names."""

    features: np.ndarray  # float32 (N, D)
    labels: np.ndarray  # int64 (N,)
    paths: list[str]
    label_names: list[str]


def load_labelled_features(files: Sequence[Path]) -> LabelledFeatures:
    """The features files of every split, one after the other."""
    loaded = [load_features(file) for file in files]
    for file, features in zip(files, loaded, strict=True):
        if features.label_names != loaded[0].label_names:
            raise UserError(
                f"{file}: classes {features.label_names}, but {files[0]} has "
                f"{loaded[0].label_names}; rerun the features stages (dvc repro)"
            )
    return LabelledFeatures(
        np.concatenate([features.features for features in loaded]),
        np.concatenate([features.labels for features in loaded]),
        [path for features in loaded for path in features.paths],
        loaded[0].label_names,
    )


def out_of_fold_probabilities(
    data: LabelledFeatures, *, C: float, folds: int, max_iter: int, seed: int
) -> np.ndarray:
    """(N, C) probabilities, each from a logistic regression that never saw that image."""
    model = build_logreg(max_iter, seed).set_params(logisticregression__C=C)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    probabilities = cross_val_predict(
        model, data.features, data.labels, cv=splitter, method="predict_proba", n_jobs=-1
    )
    return probabilities.astype(np.float32)


def datalab_rows(
    data: LabelledFeatures, probabilities: np.ndarray, near_threshold: float
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Audit rows (path, issue, score, other, suggested) for label errors, feature
    near-duplicates and outliers, and Datalab's count of issues per type."""
    lab = Datalab(data={"label": data.labels}, label_name="label", verbosity=0)
    lab.find_issues(
        features=data.features,
        pred_probs=probabilities,
        issue_types={
            "label": {},
            "near_duplicate": {"threshold": near_threshold},
            "outlier": {},
            "class_imbalance": {},
        },
    )
    issues = lab.get_issues()
    paths = np.asarray(data.paths)
    names = np.asarray(data.label_names)
    label = issues[issues["is_label_issue"]]
    frames = [
        pd.DataFrame(
            {
                "path": paths[label.index],
                "issue": "label_error",
                "score": label["label_score"].to_numpy(),
                "suggested": names[probabilities[label.index].argmax(axis=1)],
            }
        ),
        _near_duplicate_rows(lab, issues, paths),
    ]
    outlier = issues[issues["is_outlier_issue"]]
    frames.append(
        pd.DataFrame(
            {"path": paths[outlier.index], "issue": "outlier", "score": outlier["outlier_score"]}
        )
    )
    summary = lab.get_issue_summary().set_index("issue_type")["num_issues"]
    return pd.concat(frames, ignore_index=True), {
        f"datalab_{name}": int(count) for name, count in summary.items()
    }


def _near_duplicate_rows(lab: Datalab, issues: pd.DataFrame, paths: np.ndarray) -> pd.DataFrame:
    """One `near_duplicate` row per feature pair (path < other), scored by Datalab."""
    sets = lab.get_info("near_duplicate")["near_duplicate_sets"]
    scores = issues["near_duplicate_score"].to_numpy()
    rows = [
        (*sorted((paths[index], paths[other])), float(scores[index]))
        for index, members in enumerate(sets)
        for other in members
    ]
    frame = pd.DataFrame(rows, columns=["path", "other", "score"]).assign(issue="near_duplicate")
    return frame.sort_values("score").drop_duplicates(["path", "other"])
