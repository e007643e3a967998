"""End-to-end: the real dvc.yaml and stage scripts in a temporary git + DVC repository."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, repo_params_dict, write_image_folder
from imgclf.data.hdf5io import PackReader
from imgclf.data.imaging import jpeg_reduction, load_resized

pytestmark = pytest.mark.slow

SPLITS = ("train", "val", "test")
OUTPUTS = [
    "data/interim/manifest.csv",
    "data/interim/rejected.csv",
    "data/interim/splits.csv",
    "data/processed/means.json",
    "data/predictions/cnn/seed0.h5",
    "data/predictions/ensemble.h5",
    "data/predictions/logreg.h5",
    "data/predictions/finetune.h5",
    "metrics/evaluation/models/ensemble.json",
    "metrics/evaluation/summary.json",
    *(f"data/features/{split}.h5" for split in SPLITS),
    *(f"data/processed/{split}.h5" for split in SPLITS),
    "metrics/index.json",
    "metrics/split.json",
    # Models too: training is deterministic and the files hold no save time.
    "models/backbone.keras",
    "models/cnn/seed0.keras",
    "models/finetune.keras",
    "models/logreg.skops",
]


class Project:
    """A copy of the pipeline in `root`, with tiny images and its own params.yaml."""

    def __init__(self, root: Path, template: "Project | None" = None) -> None:
        """A new project in `root`, or a copy of `template` (a built one saves minutes)."""
        self.root = root
        self.first_run: list[str] = []  # the stages the first `repro` ran (set by fixtures)
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        if template is not None:
            shutil.copytree(template.root, root, symlinks=True)
            return
        root.mkdir(parents=True)
        for name in ("dvc.yaml", ".dvcignore", "stages", "src"):
            source = REPO / name
            copy = shutil.copytree if source.is_dir() else shutil.copy2
            copy(source, root / name)
        write_image_folder(root / "data" / "images")
        write_image_folder(root / "data" / "source", per_class=6)
        params = repo_params_dict()
        params["base"]["image_size"] = [24, 24]
        params["data"]["source"] = "data/images"
        params["split"].update(val=0.25, test=0.25)
        params["pack"]["batch_size"] = 5
        params["cnn"].update(seeds=[0], crop=[20, 20], epochs=2, batch_size=8)
        params["backbone"]["pretrain"].update(
            source="data/source", epochs=1, batch_size=8, val=0.2
        )
        params["logreg"].update(C=[0.1, 1.0], folds=2)
        params["finetune"].update(batch_size=8, warmup_epochs=1, epochs=1, unfreeze=4)
        self.write_params(params)
        self.command("git", "init", "-q")
        self.dvc("init", "-q")
        self.dvc("config", "core.analytics", "false")
        # DVCLive cannot run in a repository without commits (it asks git for HEAD).
        self.commit("pipeline")

    def commit(self, message: str) -> None:
        self.command("git", "add", "-A")
        self.command(
            "git",
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.com",
            "commit",
            "-qm",
            message,
        )

    def write_params(self, params: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    def update_params(self, section: str, **values: object) -> None:
        params = yaml.safe_load((self.root / "params.yaml").read_text(encoding="utf-8"))
        params[section].update(values)
        self.write_params(params)

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            args,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.command(sys.executable, "-m", "dvc", *args, check=check)

    def repro(self, *targets: str) -> list[str]:
        """Run `dvc repro`; return the stages that actually ran."""
        return re.findall(r"Running stage '([^']+)'", self.dvc("repro", *targets).stdout)

    def digests(self) -> dict[str, str]:
        return {
            name: hashlib.sha256((self.root / name).read_bytes()).hexdigest() for name in OUTPUTS
        }


DATA_STAGES = ["index", "split", "pack@train", "pack@val", "pack@test", "means"]
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
    "report",
]
ALL_STAGES = [*DATA_STAGES, *MODEL_STAGES]


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
        set(ALL_STAGES) - {"index", "backbone", "features@test"}
    )
    project.update_params("pack", interpolation="linear")
    assert sorted(project.repro()) == sorted(set(ALL_STAGES) - {"index", "split", "backbone"})
    project.update_params("logreg", C=[1.0e-6])  # surely another C: other predictions
    # Not the features: only the model on them, its predictions, and what reads those.
    assert sorted(project.repro()) == [
        "ensemble",
        "evaluate",
        "logreg",
        "predict_logreg",
        "report",
    ]
    project.update_params("data", max_rejected=0.5)
    assert project.repro() == ["index"]  # same manifest: DVC stops there
    project.update_params("cnn", seeds=[0, 7])
    # A new ensemble member trains alone; the ensemble and its evaluation follow.
    assert sorted(project.repro()) == ["cnn@7", "ensemble", "evaluate", "predict_cnn@7", "report"]


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
