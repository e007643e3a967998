"""The report's models section: every model's metrics side by side, best first, with notes on
how the models predicted (crops), how logreg's C was chosen and which models the run lacks."""

from pathlib import Path
from typing import Any

from imgclf.config import Params
from imgclf.errors import UserError
from imgclf.fileio import read_json
from imgclf.report.markdown import code, table
from imgclf.report.reportdata import ModelResult

# (column title, metrics key); rank-5 exists only with more than five classes.
COLUMNS = (
    ("test accuracy", "test.accuracy"),
    ("rank-1", "test.rank1"),
    ("rank-5", "test.rank5"),
    ("macro-F1", "test.macro_f1"),
    ("val accuracy", "val.accuracy"),
)
CENTRE_CROP = ("test accuracy, centre crop only", "test_1crop.accuracy")  # with 10 crops


def describe(name: str, params: Params, backbone: dict[str, Any] | None) -> str:
    """What a model is, in a few words."""
    if name.startswith("cnn/"):
        return f"{params.cnn.arch} from scratch"
    arch = backbone["arch"] if backbone else params.backbone.arch
    return {
        "logreg": f"logistic regression on {arch} features",
        "finetune": f"{arch} backbone fine-tuned",
        "ensemble": "mean of " + ", ".join(code(member) for member in params.ensemble_members()),
    }.get(name, name)


def models_section(
    params: Params,
    results: list[ModelResult],
    missing: list[str],
    logreg_search: Path,
    backbone: dict[str, Any] | None,
) -> list[str]:
    """The table (rows = models, best test accuracy first) and the notes under it."""
    if not results:
        return ["## Models", "", "No model metrics in this run."]
    columns = list(COLUMNS)
    if any(CENTRE_CROP[1] in result.metrics for result in results):
        columns.append(CENTRE_CROP)
    rows = []
    for rank, result in enumerate(results):
        name = f"**{code(result.name)}**" if rank == 0 else code(result.name)
        rows.append(
            [f"{name} ({describe(result.name, params, backbone)})"]
            + [_number(result.metrics.get(key)) for _, key in columns]
        )
    no_rank5 = any("test.rank5" not in result.metrics for result in results)
    notes = [
        "Metrics on the test split except the val column"
        + ("; rank-5 is n/a with five classes or fewer. " if no_rank5 else ". ")
        + f"{code(results[0].name)} has the best test accuracy: choose between models on val "
        "accuracy, as a choice made on test flatters its test score.",
        crops_note(params.predict.crops, CENTRE_CROP in columns),
        *logreg_note(logreg_search, params.logreg.folds),
    ]
    if missing:
        notes.append("Not in this run (no metrics): " + ", ".join(map(code, missing)) + ".")
    header = ["model", *(title for title, _ in columns)]
    return ["## Models", "", *table(header, rows), "", *(f"- {note}" for note in notes)]


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def crops_note(crops: int, compared: bool) -> str:
    """How the Keras models predicted: centre crop or the book's ten-crop over-sampling."""
    if crops == 1:
        return "The Keras models (CNNs, `finetune`) predict the centre crop (`predict.crops: 1`)."
    note = (
        "The Keras models (CNNs, `finetune`) average ten crops, the four corners and the "
        "centre, each also mirrored (`predict.crops: 10`)"
    )
    return note + ("; the last column is the centre crop alone." if compared else ".")


def logreg_note(path: Path, folds: int) -> list[str]:
    """How the logistic regression's C was chosen; nothing if the run has no search."""
    if not path.is_file():
        return []
    search = read_json(path)
    numbers = isinstance(search, dict) and all(
        isinstance(search.get(key), int | float) for key in ("C", "score")
    )
    if not numbers or search.get("select") not in ("cv", "val"):
        raise UserError(f"{path}: expected numbers C and score, and select cv or val")
    how = f"{folds}-fold cross-validation on train" if search["select"] == "cv" else "val"
    tried = len(search.get("scores") or {}) or "several"
    return [
        f"`logreg`: C = {search['C']:g}, the best of {tried} values by accuracy on {how} "
        f"({search['score']:.3f})."
    ]
