"""The evaluation report: a GitHub-flavoured `report.md` beside its PNGs in `figures/`, and
the same run as one HTML page with its images (`imgclf.report.htmlpage`).

Sections: the pipeline's answer (the model chosen on val, its test accuracy and interval), the
dataset, its audit (`imgclf.report.auditreport`), the backbone, every model's metrics with
intervals and comparisons (`imgclf.report.leaderboard`), calibration, training curves, and
the chosen model's confusion matrix and most confident mistakes, the export, and where each
trained artifact was made (`imgclf.report.machines`). Inputs come from
`imgclf.report.loading`; a section whose inputs the run did not produce becomes a note. Nothing
depends on the clock or the file system's order: the same run gives the same bytes.
"""

from pathlib import Path, PurePosixPath
from typing import NamedTuple

from imgclf.core.catalogue import cnn_name, curves_path, predictions_file, trained_artifacts
from imgclf.core.config import Params
from imgclf.core.fileio import atomic_output, read_json
from imgclf.data.hdf5io import SplitPredictions
from imgclf.evaluation.calibration import BINS, Reliability
from imgclf.models.modelcard import ModelCard
from imgclf.report.auditreport import audit_section
from imgclf.report.deployment import export_section
from imgclf.report.figures import (
    FigureFolder,
    save_confusion_figure,
    save_image_grid,
    save_reliability_figure,
    save_training_figure,
)
from imgclf.report.htmlpage import html_report
from imgclf.report.leaderboard import models_section
from imgclf.report.loading import (
    Curves,
    ModelResult,
    ReportInputs,
    confident_mistakes,
    join_phases,
    load_curves,
    load_results,
    load_test_predictions,
    pack_images,
    read_backbone,
    read_class_names,
    read_counts,
    read_rejected,
    read_summary,
)
from imgclf.report.machines import provenance_section
from imgclf.report.markdown import code

WARNING = "Random weights: the transfer-learning results are meaningless"
REJECTED_SHOWN = 5
CLASSES_SHOWN = 30


def build_report(params: Params, inputs: ReportInputs, out: Path, mistakes: int = 12) -> Path:
    """Write `out/report.md`, `out/report.html` and `out/figures/*.png`; return the
    Markdown report's path."""
    figures = FigureFolder(out / "figures")
    summary = read_summary(inputs.summary)
    results, missing = load_results(params.predicted_models(), inputs.metrics, summary)
    backbone = read_backbone(inputs.backbone)
    sections = [
        ["# imgclf report", "", "Written by the pipeline's `report` stage; do not edit."],
        answer_section(results, inputs),
        dataset_section(params, inputs),
        audit_section(
            inputs.audit, inputs.audit_summary, inputs.packs, params.data.source, figures
        ),
        backbone_section(params, backbone, inputs.backbone),
        models_section(params, results, missing, summary, inputs.logreg_search, backbone),
        calibration_section(inputs.reliability, figures),
        training_section(params, inputs.training, figures, backbone),
        chosen_model_section(params, results, inputs, figures, mistakes),
        export_section(inputs.exports, inputs.export, inputs.latency),
        provenance_section(inputs.provenance, trained_artifacts(params.cnn.seeds)),
    ]
    report = out / "report.md"
    with atomic_output(report) as temporary:
        text = "\n\n".join("\n".join(section) for section in sections) + "\n"
        temporary.write_text(text, encoding="utf-8")
    html_report(inputs, results, sorted(figures.written), out)
    figures.remove_stale()
    return report


def answer_section(results: list[ModelResult], inputs: ReportInputs) -> list[str]:
    """The model the pipeline chose on val, with its test accuracy and 95 % interval."""
    if not results:
        return ["## Answer", "", "No model metrics in this run."]
    chosen = results[0]
    metrics = chosen.metrics
    return [
        "## Answer",
        "",
        f"The pipeline's answer is **{code(chosen.name)}**, the best model on val "
        f"(accuracy {metrics['val.accuracy']:.3f}). On the test images it scores "
        f"**{metrics['test.accuracy']:.3f}** accuracy, 95 % interval "
        f"{metrics['test.accuracy_lo']:.3f} to {metrics['test.accuracy_hi']:.3f} (Wilson). "
        f"Its predictions are {code(str(predictions_file(inputs.predictions, chosen.name)))}.",
    ]


def dataset_section(params: Params, inputs: ReportInputs) -> list[str]:
    """Source folder, classes, split sizes, and the first few rejected files."""
    index = read_counts(inputs.index, ("images", "rejected", "classes"))
    split = read_counts(inputs.split, ("train", "val", "test"))
    text = (
        f"The images come from {code(params.data.source)} (`data.source`): "
        f"{index['images']:,} usable images in {index['classes']} classes, split into "
        f"{split['train']:,} train, {split['val']:,} val and {split['test']:,} test images."
    )
    names = read_class_names(inputs.test_pack)
    if names:
        more = ", …" if len(names) > CLASSES_SHOWN else ""
        text += f" Classes: {', '.join(names[:CLASSES_SHOWN])}{more}."
    if not index["rejected"]:
        return ["## Dataset", "", text, "", "No file was rejected."]
    listed = read_rejected(inputs.rejected, REJECTED_SHOWN)
    rejected = (
        f"{index['rejected']:,} files were rejected and skipped (listed in "
        f"{code(str(inputs.rejected))}){'; the first few:' if len(listed) else '.'}"
    )
    items = [f"- {code(row.path)}: {row.reason}" for row in listed.itertuples()]
    return ["## Dataset", "", text, "", rejected, *(["", *items] if items else [])]


def backbone_section(params: Params, backbone: ModelCard | None, path: Path) -> list[str]:
    """The backbone's architecture and where its weights came from; a warning for none."""
    if backbone is None:
        return ["## Backbone", "", f"No backbone in this run ({code(str(path))} is missing)."]
    weights = backbone.weights
    origin = {
        "imagenet": "ImageNet weights (Keras Applications)",
        "pretrain": (
            "weights pretrained by this pipeline on "
            f"{', '.join(map(code, params.backbone.pretrain.sources))} "
            "(`backbone.pretrain.sources`), the offline stand-in for ImageNet"
        ),
        "none": "random weights (`backbone.weights: none`, for smoke tests)",
    }.get(weights, f"weights loaded from the file {code(weights)}")
    size = "×".join(str(side) for side in backbone.image_size)
    text = (
        "The transfer-learning models (`logreg` on the backbone's features, `finetune`) build "
        f"on a {code(backbone.arch)} backbone{f' ({size} inputs)' if size else ''} "
        f"with {origin}."
    )
    if weights == "none":
        advice = "Set `backbone.weights` to `imagenet`, `pretrain` or a weights file."
        return ["## Backbone", "", text, "", "> [!WARNING]", f"> **{WARNING}.** {advice}"]
    return ["## Backbone", "", text]


class Family(NamedTuple):
    """A model family's training figure, or the note that replaces it."""

    figure: str
    title: str
    runs: list[tuple[str, Curves]]  # (legend name, curves)
    boundary: int | None  # last epoch of a first phase
    absent: str


PHASES = ("warmup", "finetune")  # fine-tuning's curves files, in order


def training_families(params: Params, training: Path, weights: str) -> list[Family]:
    """CNN seeds on one figure, fine-tuning's two phases joined, and the pretraining."""
    cnn = [
        (f"seed {seed}", curves)
        for seed in params.cnn.seeds
        if (curves := load_curves(curves_path(training, cnn_name(seed))))
    ]
    warmup, tune = (
        load_curves(curves_path(training, "finetune") / f"{phase}.csv") for phase in PHASES
    )
    boundary = warmup.epochs if warmup and tune else None
    finetune = join_phases(warmup, tune) if warmup and tune else warmup or tune
    pretrain = load_curves(training / "backbone.csv")
    absent = f"No curves in this run (under {code(str(training))})."
    not_pretrained = f"No pretraining in this run ({code(f'backbone.weights: {weights}')})."
    return [
        Family("training_cnn.png", f"CNNs from scratch ({params.cnn.arch})", cnn, None, absent),
        Family(
            "training_finetune.png",
            "Fine-tuning: warm-up with the backbone frozen, then its top layers unfrozen",
            [("", finetune)] if finetune else [],
            boundary,
            absent,
        ),
        Family(
            "training_backbone.png",
            "Backbone pretraining",
            [("", pretrain)] if pretrain else [],
            None,
            absent if weights == "pretrain" else not_pretrained,
        ),
    ]


def training_section(
    params: Params, training: Path, figures: FigureFolder, backbone: ModelCard | None
) -> list[str]:
    """Loss and accuracy per epoch, one figure per trained model family."""
    weights = backbone.weights if backbone else params.backbone.weights
    lines = ["## Training curves", "", "Loss and accuracy per epoch: train solid, val dashed."]
    for family in training_families(params, training, weights):
        lines += ["", f"### {family.title}", ""]
        if family.runs:
            path = figures.path(family.figure)
            save_training_figure(path, family.runs, family.title, family.boundary)
            lines.append(figures.link(family.figure, family.title))
        else:
            lines.append(family.absent)
    return lines


def calibration_section(path: Path, figures: FigureFolder) -> list[str]:
    """The chosen model's reliability diagram on test, before and after temperature scaling,
    from evaluate's table (every model's ECE is in the models table)."""
    if not path.is_file():
        return ["## Calibration", "", "No reliability table in this run."]
    table = read_json(path)
    name = table["model"]
    curves = [(name, Reliability.from_json(table["before"]))]
    if "after" in table:
        label = f"{name}, temperature {table['temperature']:g}"
        curves.append((label, Reliability.from_json(table["after"])))
    title = "Reliability on test"
    save_reliability_figure(figures.path("reliability.png"), curves, title)
    text = (
        f"{code(name)} on test: accuracy against confidence in {BINS} equal-width bins "
        "of the top-1 probability, each point sized by its number of images; points below the "
        "diagonal are over-confident. Bins with few images are noisy."
    )
    return ["## Calibration", "", text, "", figures.link("reliability.png", title)]


def chosen_model_section(
    params: Params,
    results: list[ModelResult],
    inputs: ReportInputs,
    figures: FigureFolder,
    count: int,
) -> list[str]:
    """The chosen model's row-normalised confusion matrix on test, then its worst mistakes."""
    if not results:
        return ["## Chosen model", "", "No model metrics in this run."]
    chosen = results[0].name
    path = predictions_file(inputs.predictions, chosen)
    if not path.is_file():
        return ["## Chosen model", "", f"No predictions of {code(chosen)} ({code(str(path))})."]
    test, names = load_test_predictions(path)
    accuracy = results[0].metrics["test.accuracy"]
    title = f"{chosen} on test: accuracy {accuracy:.3f}"
    save_confusion_figure(
        figures.path("confusion.png"), test.labels, test.probabilities.argmax(axis=1), names, title
    )
    text = (
        f"{code(chosen)}, on the {len(test.labels):,} test images: rows are the true classes, "
        "coloured by the fraction of each row; cells hold counts."
    )
    confusion = figures.link("confusion.png", f"Confusion matrix of {chosen}")
    mistakes = mistakes_section(params, chosen, test, names, inputs.test_pack, figures, count)
    return ["## Chosen model", "", text, "", confusion, "", *mistakes]


def mistakes_section(
    params: Params,
    model: str,
    test: SplitPredictions,
    names: list[str],
    pack: Path,
    figures: FigureFolder,
    count: int,
) -> list[str]:
    """The wrong predictions made with the highest probability: an image grid and their paths."""
    mistakes = confident_mistakes(test, names, count)
    if not mistakes:
        return ["### Most confident mistakes", "", f"{code(model)} makes no mistake on test."]
    lines = [
        "### Most confident mistakes",
        "",
        f"The {len(mistakes)} test images that {code(model)} gets wrong with the highest "
        "probability, most confident first: true → predicted (probability).",
        "",
    ]
    if pack.is_file():
        images = pack_images(pack, [mistake.path for mistake in mistakes])
        titles = [
            f"{i}. {m.true} → {m.predicted} ({m.probability:.2f})"
            for i, m in enumerate(mistakes, 1)
        ]
        save_image_grid(figures.path("mistakes.png"), images, titles)
        lines += [figures.link("mistakes.png", "Most confident mistakes"), ""]
    else:
        lines += [f"No image grid: the test pack {code(str(pack))} is not in this run.", ""]
    source = PurePosixPath(params.data.source)
    lines += [
        f"{i}. {code(str(source / m.path))}: {m.true} → {m.predicted} ({m.probability:.3f})"
        for i, m in enumerate(mistakes, 1)
    ]
    return lines
