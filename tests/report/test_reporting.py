"""The report stage on a small synthetic run written with the pipeline's own writers: every
model and number in the table, the weights warning, the mistakes in order, valid and
byte-identical figures, notes instead of crashes for missing inputs, one-line errors."""

import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

from imgclf.core.config import Params
from imgclf.core.errors import UserError
from imgclf.core.fileio import write_csv, write_json
from imgclf.data.hdf5io import SplitPredictions, save_predictions
from imgclf.evaluation.evaluating import reliability_table
from imgclf.evaluation.metrics import summarize
from imgclf.models.curves import append_epoch
from imgclf.models.modelcard import ModelCard
from imgclf.report.figures import FigureFolder
from imgclf.report.leaderboard import models_section
from imgclf.report.loading import (
    ModelResult,
    ReportInputs,
    confident_mistakes,
    join_phases,
    load_curves,
    load_results,
    pack_images,
    read_backbone,
    read_summary,
)
from imgclf.report.markdown import code, table
from imgclf.report.reporting import WARNING, backbone_section, build_report, chosen_model_section
from support import REPO
from support.packs import write_pack
from support.params import make_params, repo_params_dict

CLASSES = ["ant", "bee", "cat", "dog", "eel", "fox"]
TEST_ROWS = 24
# Wrong rows of the best model and the probability it gives its wrong class.
WRONG = {3: 0.5, 7: 0.8, 10: 0.95, 15: 0.8, 20: 0.6}
# By confidence; rows 7 and 15 tie, so file order decides.
EXPECTED_ORDER = [10, 7, 15, 20, 3]
TEST_ACCURACY = {
    "cnn/seed0": 0.611,
    "cnn/seed1": 0.622,
    "logreg": 0.733,
    "finetune": 0.644,
    "ensemble": 0.755,
}
LOGREG_METRICS = "metrics/evaluation/models/logreg.json"
SETTINGS = {
    "data": {"source": "images"},
    "cnn": {"seeds": [0, 1]},
    "ensemble": {"members": ["cnn"]},
    "predict": {"crops": 1},
}


def image_path(row: int) -> str:
    return f"{CLASSES[row % len(CLASSES)]}/img_{row:02d}.png"


def best_probabilities() -> np.ndarray:
    """The ensemble's test probabilities: right with 0.99 except on the WRONG rows."""
    rows = []
    for row in range(TEST_ROWS):
        label = row % len(CLASSES)
        confidence = WRONG.get(row, 0.99)
        target = (label + 1) % len(CLASSES) if row in WRONG else label
        probabilities = np.full(len(CLASSES), (1 - confidence) / (len(CLASSES) - 1))
        probabilities[target] = confidence
        rows.append(probabilities)
    return np.asarray(rows, np.float32)


def write_curves(path: Path, epochs: int, start: float) -> None:
    """A curves file as training writes it (`imgclf.models.curves`)."""
    for epoch in range(epochs):
        loss, accuracy = start / (epoch + 1), 0.5 + epoch / 100
        logs = {"loss": loss, "accuracy": accuracy, "val_loss": loss, "val_accuracy": accuracy}
        append_epoch(path, epoch, logs)


def write_backbone(path: Path, weights: str) -> None:
    """A stand-in model file: the report only reads its model card."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    ModelCard(kind="backbone", arch="minivggnet", weights=weights, image_size=(8, 8)).write(path)


def metrics_of(accuracy: float) -> dict[str, float]:
    """A model's metrics file, with numbers easy to find in the table."""
    return {
        "test.accuracy": accuracy,
        "test.accuracy_lo": accuracy - 0.05,
        "test.accuracy_hi": accuracy + 0.05,
        "test.rank1": accuracy,
        "test.rank5": 0.987,
        "test.rank5_lo": 0.95,
        "test.rank5_hi": 0.995,
        "test.macro_f1": accuracy - 0.1,
        "test.macro_f1_lo": accuracy - 0.14,
        "test.macro_f1_hi": accuracy - 0.06,
        "test.nll": 0.5,
        "test.ece": 0.1,
        "val.accuracy": accuracy - 0.2,
        "val.nll": 0.6,
    }


def write_predictions(root: Path, labels: np.ndarray, paths: list[str]) -> None:
    rng = np.random.default_rng(0)
    tests = {}
    for name in TEST_ACCURACY:
        if name == "ensemble":
            probabilities = best_probabilities()
        else:
            probabilities = rng.dirichlet(np.ones(len(CLASSES)), TEST_ROWS).astype(np.float32)
        tests[name] = SplitPredictions(probabilities, labels, paths)
        splits = {"val": tests[name], "test": tests[name]}
        save_predictions(root / f"data/predictions/{name}.h5", splits, CLASSES)
        models = root / "metrics/evaluation/models"
        write_json(models / f"{name}.json", metrics_of(TEST_ACCURACY[name]))
    metrics = {name: metrics_of(accuracy) for name, accuracy in TEST_ACCURACY.items()}
    summary = summarize(metrics, tests, ["cnn/seed0", "cnn/seed1"])
    write_json(root / "metrics/evaluation/summary.json", summary)
    reliability = reliability_table("ensemble", tests["ensemble"], temperature=1.5)
    write_json(root / "metrics/evaluation/reliability.json", reliability)


def write_test_pack(path: Path, labels: np.ndarray, paths: list[str]) -> None:
    """The test pack, in reverse order, so that images must be found by path."""
    images = np.stack([np.full((8, 8, 3), 10 * row, np.uint8) for row in range(TEST_ROWS)])
    write_pack(path, images[::-1], labels[::-1], CLASSES, chunk_rows=8, paths=paths[::-1])


def write_run(root: Path, weights: str = "pretrain") -> ReportInputs:
    """Every output of a pipeline run the report reads, under `root`."""
    labels = np.arange(TEST_ROWS) % len(CLASSES)
    paths = [image_path(row) for row in range(TEST_ROWS)]
    write_json(root / "metrics/index.json", {"images": 120, "rejected": 2, "classes": 6})
    write_json(root / "metrics/split.json", {"train": 72, "val": 24, "test": 24})
    rejected = pd.DataFrame({"path": ["ant/bad.jpg", "x.txt"], "reason": ["corrupt", "no class"]})
    write_csv(root / "data/interim/rejected.csv", rejected)
    grid = [{"C": 0.1, "score": 0.7}, {"C": 1.0, "score": 0.77}]
    search = {"C": 1.0, "score": 0.77, "select": "cv", "grid": grid}
    write_json(root / "metrics/logreg_search.json", search)
    write_predictions(root, labels, paths)
    write_test_pack(root / "data/processed/test.h5", labels, paths)
    for seed in (0, 1):
        write_curves(root / f"plots/training/cnn/seed{seed}.csv", 6, 2.0 + seed)
    write_curves(root / "plots/training/finetune/warmup.csv", 3, 1.5)
    write_curves(root / "plots/training/finetune/finetune.csv", 4, 1.0)
    write_curves(root / "plots/training/backbone.csv", 5, 3.0)
    write_backbone(root / "models/backbone.keras", weights)
    return inputs_under(root)


def inputs_under(root: Path) -> ReportInputs:
    """The report's inputs where the pipeline leaves them, under `root`."""
    return ReportInputs(
        index=root / "metrics/index.json",
        split=root / "metrics/split.json",
        rejected=root / "data/interim/rejected.csv",
        metrics=root / "metrics/evaluation/models",
        summary=root / "metrics/evaluation/summary.json",
        reliability=root / "metrics/evaluation/reliability.json",
        predictions=root / "data/predictions",
        packs=root / "data/processed",
        training=root / "plots/training",
        backbone=root / "models/backbone.keras",
        logreg_search=root / "metrics/logreg_search.json",
        export=root / "metrics/export.json",
        exports=root / "metrics/exports",
        latency=root / "bench/results/export.json",
        audit=root / "data/interim/audit.csv",
        audit_summary=root / "metrics/audit.json",
        provenance=root / "metrics/provenance",
        curation=root / "data/curation.csv",
    )


@pytest.fixture(scope="module")
def params() -> Params:
    return make_params(**SETTINGS)


def write_params(path: Path) -> None:
    """params.yaml as the stage reads it: the repo's, with SETTINGS."""
    raw = repo_params_dict()
    for section, values in SETTINGS.items():
        raw[section].update(values)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")


def run_report_stage(root: Path, *flags: str) -> subprocess.CompletedProcess:
    """The stage as DVC runs it (dvc.yaml's command, its paths), from the run's folder."""
    command = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]["report"]
    _, script, *paths = shlex.split(command["cmd"])
    command = [sys.executable, str(REPO / script), "--params", "params.yaml", *paths]
    return subprocess.run([*command, *flags], cwd=root, capture_output=True, text=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One full run's report, written by the stage script; shared by the reading tests."""
    root = tmp_path_factory.mktemp("run")
    write_run(root)
    write_params(root / "params.yaml")
    done = run_report_stage(root, "--out", "reports")
    assert done.returncode == 0, done.stderr
    return root, (root / "reports" / "report.md").read_text(encoding="utf-8")


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and "`" in line]


def test_table_has_every_model_chosen_first_with_its_numbers(built: tuple[Path, str]) -> None:
    root, text = built
    rows = table_rows(text)
    summary = json.loads((root / "metrics/evaluation/summary.json").read_text())
    # Val accuracy (test − 0.2 here) orders the rows; the chosen model leads the report.
    ranked = sorted(TEST_ACCURACY, key=TEST_ACCURACY.get, reverse=True)
    assert [row.split("`")[1] for row in rows] == ranked
    assert summary["chosen"] == ranked[0]
    assert f"The pipeline's answer is **`{ranked[0]}`**" in text
    for row, name in zip(rows, ranked, strict=True):
        accuracy = TEST_ACCURACY[name]
        cells = [cell.strip() for cell in row.strip("|").split("|")[1:]]
        comparison = summary["vs_chosen"].get(name)
        assert cells[0] == f"{accuracy:.3f} ± 0.050"
        if comparison is None:
            assert cells[1] == "chosen"
        else:
            assert cells[1].startswith(f"{comparison['accuracy_diff']:+.3f}".replace("-", "−"))
            assert f"p={comparison['p_value']:.3f}" in cells[1]
            assert cells[1].endswith("**\\***") == comparison["significant"]
        assert cells[2:] == [
            f"{accuracy - 0.1:.3f} ± 0.040",
            "0.987 [0.950, 0.995]",  # lopsided: the bounds, not ±
            f"{accuracy - 0.2:.3f}",
            "0.500",
            "0.100",
        ]
    assert rows[0].startswith("| **`ensemble`** (mean of `cnn/seed0`, `cnn/seed1`)")
    assert "The ensemble " in text and "its best member on val, `cnn/seed1`" in text
    assert "centre crop (`predict.crops: 1`)" in text
    assert "rank-5 is n/a" not in text
    searched = "C = 1, the best by accuracy on 3-fold cross-validation on train of 0.1 (0.700), "
    assert searched + "1 (0.770)." in text


def test_dataset_paragraph(built: tuple[Path, str]) -> None:
    _, text = built
    assert "`images` (`data.source`): 120 usable images in 6 classes" in text
    assert "72 train, 24 val and 24 test images" in text
    assert "Classes: ant, bee, cat, dog, eel, fox." in text
    assert "2 files were rejected" in text
    assert "- `ant/bad.jpg`: corrupt\n- `x.txt`: no class" in text


def test_mistakes_listed_most_confident_first(built: tuple[Path, str]) -> None:
    _, text = built
    listed = [line for line in text.splitlines() if line[:1].isdigit() and ". `images/" in line]
    expected = []
    for rank, row in enumerate(EXPECTED_ORDER, 1):
        true, predicted = CLASSES[row % 6], CLASSES[(row + 1) % 6]
        expected.append(
            f"{rank}. `images/{image_path(row)}`: {true} → {predicted} ({WRONG[row]:.3f})"
        )
    assert listed == expected


def test_confident_mistakes_keeps_count_and_file_order_on_ties() -> None:
    labels = np.arange(TEST_ROWS) % len(CLASSES)
    paths = [image_path(row) for row in range(TEST_ROWS)]
    test = SplitPredictions(best_probabilities(), labels, paths)
    mistakes = confident_mistakes(test, CLASSES, 3)
    assert [mistake.path for mistake in mistakes] == [image_path(r) for r in EXPECTED_ORDER[:3]]
    assert mistakes[0].probability == pytest.approx(0.95)


def test_figures_are_valid_pngs(built: tuple[Path, str]) -> None:
    root, text = built
    figures = root / "reports" / "figures"
    names = sorted(path.name for path in figures.iterdir())
    assert names == [
        "confusion.png",
        "mistakes.png",
        "reliability.png",
        "training_backbone.png",
        "training_cnn.png",
        "training_finetune.png",
    ]
    for name in names:
        assert f"](figures/{name})" in text
        image = cv2.imread(str(figures / name))
        assert image is not None and min(image.shape[:2]) >= 200
    assert not list((root / "reports").glob(".*"))  # no temporary files left behind


def test_same_inputs_same_bytes(
    built: tuple[Path, str], params: Params, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = built
    monkeypatch.chdir(root)
    # Another process with a user's own matplotlib settings must not change a byte.
    with matplotlib.rc_context({"font.size": 30, "lines.linewidth": 5, "axes.grid": False}):
        build_report(params, inputs_under(Path()), tmp_path / "again")
    first = sorted((root / "reports").rglob("*"))
    second = sorted((tmp_path / "again").rglob("*"))
    assert [p.relative_to(root / "reports") for p in first] == [
        p.relative_to(tmp_path / "again") for p in second
    ]
    for one, other in zip(first, second, strict=True):
        assert one.is_dir() or one.read_bytes() == other.read_bytes(), one.name


@pytest.mark.parametrize(
    ("weights", "origin"),
    [
        ("none", "random weights (`backbone.weights: none`"),
        ("pretrain", "pretrained by this pipeline on `data/sample/source`"),
        ("imagenet", "ImageNet weights"),
        ("weights/body.weights.h5", "loaded from the file `weights/body.weights.h5`"),
    ],
)
def test_backbone_origin_and_warning_only_for_none(
    tmp_path: Path, params: Params, weights: str, origin: str
) -> None:
    path = tmp_path / "backbone.keras"
    write_backbone(path, weights)
    text = "\n".join(backbone_section(params, read_backbone(path), path))
    assert "`minivggnet` backbone (8×8 inputs)" in text
    assert origin in text
    assert ("> [!WARNING]" in text) == (weights == "none")
    assert (f"**{WARNING}.**" in text) == (weights == "none")


def test_report_warns_of_random_weights(
    tmp_path: Path, params: Params, built: tuple[Path, str]
) -> None:
    _, pretrained = built
    assert WARNING.lower() == "random weights: the transfer-learning results are meaningless"
    assert WARNING.lower() not in pretrained.lower()
    text = build_report(params, write_run(tmp_path, "none"), tmp_path / "reports").read_text(
        encoding="utf-8"
    )
    assert f"> [!WARNING]\n> **{WARNING}.**" in text


def test_missing_optional_inputs_become_notes(
    tmp_path: Path, params: Params, built: tuple[Path, str]
) -> None:
    root = shutil.copytree(built[0], tmp_path / "run")  # its report has every figure
    inputs = inputs_under(root)
    for name in ("data/predictions/finetune.h5", "metrics/evaluation/models/finetune.json"):
        (root / name).unlink()
    ranking = json.loads(inputs.summary.read_text())["ranking"]
    rerank(root, [name for name in ranking if name != "finetune"])  # as evaluate would rank
    for path in (inputs.test_pack, inputs.backbone, inputs.logreg_search, inputs.rejected):
        path.unlink()
    shutil.rmtree(inputs.training / "finetune")
    (inputs.training / "backbone.csv").unlink()
    out = root / "reports"
    text = build_report(params, inputs, out).read_text(encoding="utf-8")
    assert "Not in this run (no metrics): `finetune`." in text
    assert "No backbone in this run" in text
    assert "No image grid: the test pack" in text
    assert "2 files were rejected and skipped" in text
    assert text.count("No curves in this run") == 2  # fine-tuning and pretraining
    assert "`logreg`: C =" not in text
    # The earlier report's figures of what is now missing are gone.
    figures = sorted(path.name for path in (out / "figures").iterdir())
    assert figures == ["confusion.png", "reliability.png", "training_cnn.png"]


def test_no_models_or_no_predictions_of_the_best(tmp_path: Path, params: Params) -> None:
    inputs = write_run(tmp_path)
    summary = read_summary(inputs.summary)
    results, missing = load_results(params.predicted_models(), inputs.metrics, summary)
    assert (results[0].name, missing) == ("ensemble", [])
    (tmp_path / "data/predictions/ensemble.h5").unlink()
    figures = FigureFolder(tmp_path / "figures")
    text = "\n".join(chosen_model_section(params, results, inputs, figures, 12))
    assert "No predictions of `ensemble`" in text and not figures.written
    shutil.rmtree(inputs.metrics)
    results, missing = load_results(params.predicted_models(), inputs.metrics, summary)
    assert not results and missing == params.predicted_models()
    text = "\n".join(models_section(params, results, missing, None, inputs.logreg_search, None))
    text += "\n".join(chosen_model_section(params, results, inputs, figures, 12))
    assert text.count("No model metrics in this run.") == 2


def test_ten_crops_and_no_rank5(params: Params) -> None:
    results = [
        ModelResult(
            name,
            {"test.accuracy": 0.7, "test.rank1": 0.7, "test.macro_f1": 0.5}
            | {"val.accuracy": 0.5, "val.nll": 0.5, "test.nll": 0.5, "test.ece": 0.1}
            | ({"test_1crop.accuracy": 0.4} if "cnn" in name else {}),
        )
        for name in params.predicted_models()
    ]
    ten = replace(params, predict=replace(params.predict, crops=10))
    summary = {"chosen": results[0].name, "chosen_by": "val accuracy", "vs_chosen": {}}
    text = "\n".join(models_section(ten, results, [], summary, Path("absent.json"), None))
    assert "| test accuracy, centre crop only |" in text
    assert "average ten crops" in text and "one column shows the centre crop alone" in text
    assert "Rank-5 is n/a with five classes or fewer" in text
    for row in table_rows(text):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[4] == "n/a"
        assert cells[5] == ("0.400" if cells[0].lstrip("*").startswith("`cnn") else "n/a")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: (root / LOGREG_METRICS).write_text("{"), "not valid JSON"),
        (
            lambda root: write_json(root / LOGREG_METRICS, {"test.accuracy": 1}),
            "no number for test.accuracy_lo, test.accuracy_hi, test.rank1, test.macro_f1, ",
        ),
        (lambda root: write_json(root / "metrics/split.json", {"train": 1}), "val, test"),
        (
            lambda root: write_json(root / "metrics/evaluation/summary.json", {"chosen": "x"}),
            "summary.json: no ranking headed by the chosen model",
        ),
        (lambda root: rerank(root, ["ensemble", "logreg"]), "but the evaluate stage's summary"),
        (
            lambda root: (root / "plots/training/cnn/seed1.csv").write_text("epoch,value\n1,1\n"),
            r"seed1.csv: missing column\(s\) accuracy, loss, val_accuracy, val_loss",
        ),
        (lambda root: write_json(root / "metrics/logreg_search.json", {"C": "x"}), "C and score"),
        (lambda root: damage_best_predictions(root, "val"), "no test predictions"),
        (lambda root: damage_best_predictions(root, "test"), "do not fit 6 classes"),
    ],
)
def test_bad_inputs_are_one_line_errors(
    tmp_path: Path, params: Params, damage: Callable[[Path], object], message: str
) -> None:
    inputs = write_run(tmp_path)
    damage(tmp_path)
    with pytest.raises(UserError, match=message) as caught:
        build_report(params, inputs, tmp_path / "reports")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "reports" / "report.md").exists()


def rerank(root: Path, ranking: list[str]) -> None:
    """A summary from another run: it ranks other models than the metrics files hold."""
    path = root / "metrics/evaluation/summary.json"
    write_json(path, json.loads(path.read_text()) | {"ranking": ranking})


def damage_best_predictions(root: Path, split: str) -> None:
    """The best model's predictions with only `split`, whose labels name a 7th class."""
    labels = np.full(TEST_ROWS, len(CLASSES))
    paths = [image_path(row) for row in range(TEST_ROWS)]
    broken = {split: SplitPredictions(best_probabilities(), labels, paths)}
    save_predictions(root / "data/predictions/ensemble.h5", broken, CLASSES)


def test_mistake_images_found_by_path_or_a_clear_error(tmp_path: Path) -> None:
    labels = np.arange(TEST_ROWS) % len(CLASSES)
    paths = [image_path(row) for row in range(TEST_ROWS)]
    pack = tmp_path / "test.h5"
    write_test_pack(pack, labels, paths)  # in reverse order
    images = pack_images(pack, [image_path(10), image_path(3)])
    assert [int(image[0, 0, 0]) for image in images] == [100, 30]
    with pytest.raises(UserError, match=r"test.h5: has no image 'ant/other.png'"):
        pack_images(pack, ["ant/other.png"])


def test_curves_phases_join_after_the_first(tmp_path: Path) -> None:
    write_curves(tmp_path / "a.csv", 3, 1.0)
    write_curves(tmp_path / "b.csv", 2, 1.0)
    first, second = load_curves(tmp_path / "a.csv"), load_curves(tmp_path / "b.csv")
    assert first is not None and second is not None and first.epochs == 3
    epochs, values = join_phases(first, second).series["val", "loss"]
    assert epochs.tolist() == [1, 2, 3, 4, 5]
    assert values.tolist() == pytest.approx([1.0, 0.5, 1 / 3, 1.0, 0.5])
    assert load_curves(tmp_path / "missing.csv") is None


def test_markdown_helpers_escape() -> None:
    assert code("a/b.png") == "`a/b.png`"
    assert code("odd`name.png") == "``odd`name.png``"
    assert table(["m", "x"], [["a|b", "1"]]) == ["| m | x |", "|---|---:|", "| a\\|b | 1 |"]


def test_stage_error_is_one_line(built: tuple[Path, str], tmp_path: Path) -> None:
    root = shutil.copytree(built[0], tmp_path / "run")
    (root / "metrics" / "index.json").write_text("[", encoding="utf-8")
    failed = run_report_stage(root, "--out", "again")
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        "imgclf: error: metrics/index.json: not valid JSON (Expecting value, line 1)"
    ]
    assert not (root / "again" / "report.md").exists()
