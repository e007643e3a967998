"""End-to-end: the real dvc.yaml and stage scripts in a temporary git + DVC repository."""

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imgclf.data.hdf5io import PackReader
from imgclf.data.imaging import jpeg_reduction, load_resized
from support.project import AFTER_LOGREG_C, SPLITS, Project

pytestmark = pytest.mark.slow

DATA_STAGES = ["index", "split", "pack@train", "pack@val", "pack@test", "means"]
PRETRAIN_STAGES = [
    "pretrain_index@data/source",
    "pretrain_pack@data/source-train",
    "pretrain_pack@data/source-val",
]
MODEL_STAGES = [
    "cnn@0",
    "predict_cnn@0",
    "backbone",
    "features@train",
    "features@val",
    "features@test",
    "logreg",
    "predict_logreg",
    "finetune",
    "predict_finetune",
    "ensemble",
    "export",
    "predict_export",
    "evaluate",
    "score_export",
    "audit",
    "report",
]
ALL_STAGES = [*DATA_STAGES, *PRETRAIN_STAGES, *MODEL_STAGES]


@pytest.fixture
def project(built_project: Project, tmp_path: Path) -> Project:
    """A private copy of the session's built project."""
    return Project(tmp_path / "project", template=built_project)


def test_first_run_runs_every_stage(built_project: Project) -> None:
    assert sorted(built_project.first_run) == sorted(ALL_STAGES)


def test_packs_match_the_images_and_nothing_reruns(project: Project) -> None:
    splits = pd.read_csv(project.root / "data/interim/splits.csv")
    assert splits["split"].value_counts().to_dict() == {"train": 12, "val": 6, "test": 6}
    for split in SPLITS:
        expected = splits[splits["split"] == split].set_index("path")
        with PackReader(project.root / f"data/processed/{split}.h5") as reader:
            assert reader.images.shape == (len(expected), 24, 24, 3)
            assert sorted(reader.paths) == sorted(expected.index)
            for index, path in enumerate(reader.paths):
                row = expected.loc[path]
                assert reader.label_names[reader.labels[index]] == row.label
                image = load_resized(
                    project.root / "data/images" / path,
                    (24, 24),
                    reduce=jpeg_reduction(row.width, row.height, (24, 24)),
                )
                np.testing.assert_array_equal(reader.images[index], image)
    assert project.repro() == []  # also after moving the repository: copies hash the same
    assert "up to date" in project.dvc("status").stdout


def test_param_edits_rerun_only_what_they_affect(project: Project) -> None:
    project.update_params("logreg", C=[1.0e-6])  # surely another C: other predictions
    assert sorted(project.repro()) == AFTER_LOGREG_C
    project.update_params("data", max_rejected=0.5)
    assert project.repro() == ["index"]  # same manifest: DVC stops there
    project.update_params("split", val=0.3)
    # The test split is drawn first, so it stays the same: pack@test reruns, writes the same
    # bytes, and DVC does not rerun features@test. (Built as far as the features: the
    # stages after them are only listed as stale, which keeps the test short.)
    features = [f"features@{split}" for split in SPLITS]
    assert sorted(project.repro(*features)) == sorted(
        ["split", *(f"pack@{split}" for split in SPLITS), "features@train", "features@val"]
    )
    # What reads the new packs and features is stale (and, when rerun, what reads its
    # outputs); nothing before them, and not features@test.
    stale = re.findall(r"^(\S+):$", project.dvc("status").stdout, re.MULTILINE)
    assert sorted(stale) == [
        "audit",
        "cnn@0",
        "export",
        "finetune",
        "logreg",
        "means",
        "predict_cnn@0",
        "predict_export",
        "predict_finetune",
        "predict_logreg",
        "report",
    ]
    # Seeds and params that go back, and pack params, are in test_dvc_workflow and
    # test_stage_params.


def test_the_report_says_what_the_metrics_files_say(built_project: Project) -> None:
    root = built_project.root
    report = (root / "reports/report.md").read_text(encoding="utf-8")
    summary = json.loads((root / "metrics/evaluation/summary.json").read_text())
    index = json.loads((root / "metrics/index.json").read_text())
    split = json.loads((root / "metrics/split.json").read_text())
    chosen = summary["chosen"]
    assert f"The pipeline's answer is **`{chosen}`**" in report
    assert f"scores **{summary['test.accuracy']:.3f}** accuracy" in report
    assert (
        f"{index['images']:,} usable images in {index['classes']} classes, split into "
        f"{split['train']:,} train, {split['val']:,} val and {split['test']:,} test images"
    ) in report
    rows = models_table(report)
    assert rows[0]["model"] == chosen
    assert len(built_project.figures()) >= 4
    for row in rows:
        name = row["model"]
        metrics = json.loads((root / f"metrics/evaluation/models/{name}.json").read_text())
        assert_interval(row["test accuracy"], metrics, "test.accuracy")
        assert_interval(row["macro-F1"], metrics, "test.macro_f1")
        assert row["val accuracy"] == f"{metrics['val.accuracy']:.3f}"
        if name == chosen:
            assert row["vs chosen (test accuracy)"] == "chosen"
            continue
        versus = summary["vs_chosen"][name]
        difference = f"{versus['accuracy_diff']:+.3f}".replace("-", "\N{MINUS SIGN}")
        cell = row["vs chosen (test accuracy)"]
        assert cell.startswith(difference + " [") and f"p={versus['p_value']:.3f}" in cell
        assert cell.endswith("**\\***") == versus["significant"]


def models_table(report: str) -> list[dict[str, str]]:
    """The report's models table, a dict per row; `model` is the model's name."""
    section = report.split("## Models\n", 1)[1].lstrip("\n")
    lines = list(itertools.takewhile(lambda line: line.startswith("|"), section.splitlines()))
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        row = dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        row["model"] = re.search(r"`([^`]+)`", row["model"])[1]
        rows.append(row)
    return rows


def assert_interval(cell: str, metrics: dict[str, float], key: str) -> None:
    """`value ± half-width` or `value [lo, hi]`, as the metrics file has them."""
    value, low, high = (metrics[key + suffix] for suffix in ("", "_lo", "_hi"))
    if "±" in cell:
        assert cell == f"{value:.3f} ± {(high - low) / 2:.3f}"
    else:
        assert cell == f"{value:.3f} [{low:.3f}, {high:.3f}]"


def test_bad_param_stops_with_one_line(project: Project) -> None:
    project.update_params("split", val=1.5)
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert "imgclf: error: params.yaml: split.val = 1.5 is not allowed" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_too_many_rejected_files_fail_but_are_listed(project: Project) -> None:
    for index in range(3):
        (project.root / "data/images/cat" / f"broken{index}.jpg").write_bytes(b"\xff\xd8\xffno")
    project.update_params("data", max_rejected=0.1)
    result = project.dvc("repro", check=False)
    assert result.returncode != 0
    assert re.search(
        r"error: 3 of 27 files rejected \(11\.1%\), above data\.max_rejected", result.stderr
    )
    rejected = pd.read_csv(project.root / "data/interim/rejected.csv")
    assert rejected["path"].tolist() == [f"cat/broken{index}.jpg" for index in range(3)]
    assert not (project.root / "data/interim/manifest.csv").exists()
    project.update_params("data", max_rejected=0.2)
    assert project.repro("index") == ["index"]
