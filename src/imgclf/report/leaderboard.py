"""The report's models section: every model's metrics side by side with their 95 % intervals,
in the order the pipeline chooses (val), each compared with the chosen model on test; notes on
how the models predicted (crops), how logreg's C was chosen and which models the run lacks."""

from pathlib import Path
from typing import Any

from imgclf.core.config import Params
from imgclf.core.errors import UserError
from imgclf.core.fileio import read_json
from imgclf.evaluation.calibration import BINS
from imgclf.models.modelcard import ModelCard
from imgclf.report.loading import ModelResult
from imgclf.report.markdown import code, table

CENTRE_CROP = ("test accuracy, centre crop only", "test_1crop.accuracy")  # with 10 crops


def describe(name: str, params: Params, backbone: ModelCard | None) -> str:
    """What a model is, in a few words."""
    if name.startswith("cnn/"):
        return f"{params.cnn.arch} from scratch"
    arch = backbone.arch if backbone else params.backbone.arch
    return {
        "logreg": f"logistic regression on {arch} features",
        "finetune": f"{arch} backbone fine-tuned",
        "ensemble": "mean of " + ", ".join(code(member) for member in params.ensemble_members()),
    }.get(name, name)


def models_section(
    params: Params,
    results: list[ModelResult],
    missing: list[str],
    summary: dict[str, Any] | None,
    logreg_search: Path,
    backbone: ModelCard | None,
) -> list[str]:
    """The table (rows = models, the chosen one first) and the notes under it."""
    if not results or summary is None:
        return ["## Models", "", "No model metrics in this run."]
    centre_crop = any(CENTRE_CROP[1] in result.metrics for result in results)
    scaled = "temperature" in results[0].metrics
    header = [
        "model",
        "test accuracy",
        "vs chosen (test accuracy)",
        "macro-F1",
        "rank-5",
        *([CENTRE_CROP[0]] if centre_crop else []),
        "val accuracy",
        "test NLL" + (" → scaled" if scaled else ""),
        "test ECE" + (" → scaled" if scaled else ""),
    ]
    rows = []
    for rank, result in enumerate(results):
        metrics = result.metrics
        name = f"**{code(result.name)}**" if rank == 0 else code(result.name)
        rows.append(
            [
                f"{name} ({describe(result.name, params, backbone)})",
                _interval(metrics, "test.accuracy"),
                _comparison(summary["vs_chosen"].get(result.name)),
                _interval(metrics, "test.macro_f1"),
                _interval(metrics, "test.rank5"),
                *([_number(metrics.get(CENTRE_CROP[1]))] if centre_crop else []),
                _number(metrics.get("val.accuracy")),
                _scaled(metrics, "test.nll"),
                _scaled(metrics, "test.ece"),
            ]
        )
    no_rank5 = any("test.rank5" not in result.metrics for result in results)
    notes = [
        f"Rows in the order the pipeline chooses ({summary['chosen_by']}); "
        f"{code(results[0].name)} first is its answer. Test metrics are for reading, never "
        "for choosing." + (" Rank-5 is n/a with five classes or fewer." if no_rank5 else ""),
        "± is half the width of the 95 % interval over the test images (Wilson for accuracy "
        "and rank-5, a seeded bootstrap for macro-F1); the exact bounds are the `_lo`/`_hi` "
        "keys of the metrics files.",
        "vs chosen: test accuracy minus the chosen model's on the same images, McNemar's "
        "exact p and the 95 % interval that inverts that test (it excludes 0 exactly when "
        "p < 0.05); **\\*** marks p < 0.05, each comparison on its own (no correction for "
        "making several).",
        *ensemble_note(summary.get("ensemble")),
        calibration_note(scaled),
        crops_note(params.predict.crops, centre_crop),
        *logreg_note(logreg_search, params.logreg.folds),
    ]
    if missing:
        notes.append("Not in this run (no metrics): " + ", ".join(map(code, missing)) + ".")
    return ["## Models", "", *table(header, rows), "", *(f"- {note}" for note in notes)]


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def _interval(metrics: dict[str, float], key: str) -> str:
    """`0.853 ± 0.046` (the value and half its interval's width), or `1.000 [0.983, 1.000]`
    when the interval is lopsided, as Wilson's is near 0 or 1."""
    value, low, high = (metrics.get(key + suffix) for suffix in ("", "_lo", "_hi"))
    if not all(isinstance(number, int | float) for number in (value, low, high)):
        return _number(value)
    if abs((high - value) - (value - low)) > (high - low) / 4:
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"
    return f"{value:.3f} ± {(high - low) / 2:.3f}"


def _signed(value: float) -> str:
    return f"{value:+.3f}".replace("-", "−")


def _comparison(comparison: dict[str, Any] | None) -> str:
    """`−0.071 [−0.129, −0.018] p=0.017 *`, or `chosen` for the chosen model itself."""
    if comparison is None:
        return "chosen"
    low, high = comparison["accuracy_diff_lo"], comparison["accuracy_diff_hi"]
    mark = " **\\***" if comparison["significant"] else ""
    return (
        f"{_signed(comparison['accuracy_diff'])} [{_signed(low)}, {_signed(high)}] "
        f"p={comparison['p_value']:.3f}{mark}"
    )


def _scaled(metrics: dict[str, float], key: str) -> str:
    """A calibration metric, then its value after temperature scaling when there is one."""
    after = metrics.get(key + "_scaled")
    before = _number(metrics.get(key))
    return f"{before} → {after:.3f}" if isinstance(after, int | float) else before


def ensemble_note(verdict: dict[str, Any] | None) -> list[str]:
    """Whether the ensemble beat its best member (chosen on val), on the same test images."""
    if verdict is None:
        return []
    if verdict["beats_best_member"]:
        outcome = "beats"
    elif verdict["significant"]:
        outcome = "is worse than"
    else:
        outcome = "is not significantly different from"
    return [
        f"The ensemble {outcome} its best member on val, {code(verdict['best_member'])}, on "
        f"test: {_comparison(verdict)}."
    ]


def calibration_note(scaled: bool) -> str:
    """What NLL and ECE say, and what temperature scaling did to them."""
    note = (
        "NLL (mean negative log-likelihood) and ECE (expected calibration error, "
        f"{BINS} confidence bins) measure how honest the probabilities are; lower is better."
    )
    if not scaled:
        return note + " `evaluate.calibrate: temperature` would fit a temperature on val."
    return note + (
        " After the arrow: the probabilities divided in log space by a temperature fitted on "
        "val (`evaluate.calibrate: temperature`), which leaves every prediction, and so "
        "accuracy, unchanged."
    )


def crops_note(crops: int, compared: bool) -> str:
    """How the Keras models predicted: centre crop or the book's ten-crop over-sampling."""
    if crops == 1:
        return "The Keras models (CNNs, `finetune`) predict the centre crop (`predict.crops: 1`)."
    note = (
        "The Keras models (CNNs, `finetune`) average ten crops, the four corners and the "
        "centre, each also mirrored (`predict.crops: 10`); a model whose input is the whole "
        "packed image averages two, the image and its mirror"
    )
    return note + ("; one column shows the centre crop alone." if compared else ".")


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
    grid = search.get("grid")
    if isinstance(grid, list) and all(isinstance(row, dict) for row in grid):
        tried = ", ".join(f"{row['C']:g} ({row['score']:.3f})" for row in grid)
        return [f"`logreg`: C = {search['C']:g}, the best by accuracy on {how} of {tried}."]
    return [  # a search file written before the stage kept its grid
        f"`logreg`: C = {search['C']:g}, the best of several values by accuracy on {how} "
        f"({search['score']:.3f})."
    ]
