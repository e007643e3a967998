"""End-to-end: the real dvc.yaml and stage scripts in a temporary git + DVC repository."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imgclf.data.hdf5io import PackReader
from imgclf.data.imaging import jpeg_reduction, load_resized
from pipeline_project import SPLITS, Project

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
    "evaluate",
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
    project.update_params("split", val=0.3)
    # The test split is drawn first, so it stays the same: pack@test reruns, writes the same
    # bytes, and DVC does not rerun features@test.
    assert sorted(project.repro()) == sorted(
        set(ALL_STAGES) - {"index", "backbone", "features@test", *PRETRAIN_STAGES}
    )
    project.update_params("logreg", C=[1.0e-6])  # surely another C: other predictions
    # Not the features: only the model on them, its predictions, and what reads those (the
    # audit's out-of-fold probabilities use logreg's chosen C).
    assert sorted(project.repro()) == [
        "audit",
        "ensemble",
        "evaluate",
        "logreg",
        "predict_logreg",
        "report",
    ]
    project.update_params("data", max_rejected=0.5)
    assert project.repro() == ["index"]  # same manifest: DVC stops there
    # Seeds and params that go back, and pack params, are in test_dvc_workflow and
    # test_stage_params.


def test_two_runs_from_scratch_give_identical_bytes(
    built_project: Project, tmp_path: Path
) -> None:
    first, second = built_project, Project(tmp_path / "second")
    second.repro()
    assert first.digests() == second.digests()


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
