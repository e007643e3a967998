"""The `imgclf` command: its help, `compare` between two revisions of a real git + DVC
project (predictions read through DVC, paired test on the shared images), and `doctor`."""

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from imgclf.core.fileio import write_json
from imgclf.data.hdf5io import SplitPredictions, save_predictions
from imgclf.evaluation.runcomparison import compare_runs, read_run
from imgclf.evaluation.statistics import compare_paired
from support import REPO

CLASSES = ["cat", "dog", "eel"]
ROWS = 30


def imgclf(
    *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgclf", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_help_teaches_every_command() -> None:
    done = imgclf("--help", cwd=REPO)
    assert done.returncode == 0
    for command in ("classify", "compare", "doctor", "imgclf compare HEAD~1 workspace"):
        assert command in done.stdout
    classify = imgclf("classify", "--help", cwd=REPO)
    assert classify.returncode == 0 and "usage: imgclf classify" in classify.stdout
    assert "--top-k" in classify.stdout


def predictions(
    wrong: set[int], paths: list[str] | None = None, shift: int = 1
) -> SplitPredictions:
    """Confident answers: the true class except on the rows in `wrong` (`shift` classes on)."""
    labels = np.arange(ROWS) % len(CLASSES)
    answers = np.array([(label + shift * (row in wrong)) % 3 for row, label in enumerate(labels)])
    probabilities = np.full((ROWS, 3), 0.05, np.float32)
    probabilities[np.arange(ROWS), answers] = 0.9
    return SplitPredictions(
        probabilities, labels, paths or [f"img/{row:02}.jpg" for row in range(ROWS)]
    )


def git(root: Path, *argv: str) -> None:
    subprocess.run(["git", *argv], cwd=root, check=True, capture_output=True)


def dvc(root: Path, *argv: str) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *argv], cwd=root, check=True, capture_output=True)


def commit_run(root: Path, chosen: str, test: SplitPredictions, message: str) -> None:
    """A run's outputs as the pipeline leaves them: predictions in DVC, the summary in git."""
    splits = {"val": test, "test": test}
    save_predictions(root / f"data/predictions/{chosen}.h5", splits, CLASSES)
    write_json(root / "metrics/evaluation/summary.json", {"chosen": chosen})
    dvc(root, "add", "-q", "data/predictions")
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two commits: finetune wrong on rows 0-5, then logreg wrong on rows 4-6 with other
    answers (0-3 fixed, 4-5 wrong both times, 6 broken); a workspace where logreg is wrong on
    row 0 only and the test split has two other images."""
    root = tmp_path_factory.mktemp("project")
    git(root, "init", "-q")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    dvc(root, "init", "-q")
    commit_run(root, "finetune", predictions(set(range(6))), "first")
    commit_run(root, "logreg", predictions({4, 5, 6}, shift=2), "second")
    kept = [f"img/{row:02}.jpg" for row in range(ROWS)]
    kept[10], kept[11] = "img/new1.jpg", "img/new2.jpg"  # curation: two images replaced
    test = predictions({0}, kept)
    save_predictions(root / "data/predictions/logreg.h5", {"val": test, "test": test}, CLASSES)
    return root


def test_compare_lists_what_changed_with_the_paired_test(project: Path) -> None:
    done = imgclf("compare", "HEAD~1", "HEAD", cwd=project)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "A = HEAD~1 (finetune), B = HEAD (logreg)."
    expected = compare_paired(
        np.array([row not in {4, 5, 6} for row in range(ROWS)]),
        np.array([row >= 6 for row in range(ROWS)]),
    )
    assert f"B − A {expected.accuracy_diff:+.3f}" in lines[1]
    assert f"McNemar p = {expected.p_value:.3g}" in lines[1]
    assert "On the 30 test images" in lines[1] and "accuracy A 0.800, B 0.900" in lines[1]
    assert lines[2].startswith("7 images changed prediction: 4 fixed, 1 broken")
    assert lines[4].split() == ["image", "label", "A", "B"]
    table = [line.split() for line in lines[5:]]
    assert [row[0] for row in table] == [f"img/{row:02}.jpg" for row in (0, 1, 2, 3, 6, 4, 5)]
    assert table[0][1:] == ["cat", "dog", "(0.90)", "cat", "(0.90)", "fixed"]
    assert table[4][-1] == "broken" and len(table[5]) == 6  # wrong both times: no verdict


def test_the_workspace_and_one_model_compare_on_the_images_both_scored(project: Path) -> None:
    a = read_run(project, "HEAD", "logreg")
    b = read_run(project, "workspace", "logreg")
    comparison = compare_runs(a, b)
    assert comparison.shared == ROWS - 2  # the two replaced images are not compared
    assert [change.path for change in comparison.changes] == [
        "img/04.jpg",
        "img/05.jpg",
        "img/06.jpg",
        "img/00.jpg",
    ]
    assert comparison.paired.only_a_right == 3 and comparison.paired.only_b_right == 1


def test_a_revision_without_the_model_is_one_line(project: Path) -> None:
    done = imgclf("compare", "HEAD~1", "HEAD", "--model", "cnn/seed0", cwd=project)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cnn/seed0.h5" in done.stderr
    assert "HEAD~1" in done.stderr and "dvc pull" in done.stderr
    one = imgclf("compare", "HEAD", cwd=project)
    assert one.returncode == 1 and "expected two revisions, got 1" in one.stderr


def environment(**changes: str) -> dict[str, str]:
    """This environment first on PATH, with `changes`."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return env | changes


def test_doctor_passes_here_and_names_what_to_fix() -> None:
    done = imgclf("doctor", cwd=REPO, env=environment())
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:1]] == ["ok"]
    assert any(
        line.startswith("ok      CPU: ") and "deterministic kernels pinned" in line
        for line in lines
    )
    assert any(line.split(":")[0].endswith("GPU") for line in lines)
    broken = imgclf("doctor", cwd=REPO, env=environment(OPENBLAS_CORETYPE="SandyBridge"))
    assert broken.returncode == 1
    assert "PROBLEM CPU: " in broken.stdout and "OPENBLAS_CORETYPE='SandyBridge'" in broken.stdout
    elsewhere = imgclf("doctor", cwd=REPO, env=environment(PATH="/usr/bin:/bin"))
    assert elsewhere.returncode == 1 and "PROBLEM environment: " in elsewhere.stdout
    assert "bin/activate" in elsewhere.stdout


def test_doctor_names_two_tensorflow_builds_installed_together(tmp_path: Path) -> None:
    """pip lets `tensorflow` and `tensorflow-cpu` share one package folder; doctor says so.
    (The second build is its distribution record on the path: what pip leaves.)"""
    cpu_build = version("tensorflow-cpu")
    record = tmp_path / f"tensorflow-{cpu_build}.dist-info"
    record.mkdir()
    (record / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: tensorflow\nVersion: {cpu_build}\n"
    )
    done = imgclf("doctor", cwd=REPO, env=environment(PYTHONPATH=str(tmp_path)))
    assert done.returncode == 1
    assert (
        f"PROBLEM TensorFlow builds: tensorflow-cpu {cpu_build} and tensorflow {cpu_build} are "
        "both installed" in done.stdout
    )
    alone = imgclf("doctor", cwd=REPO, env=environment())
    assert f"ok      TensorFlow build: tensorflow-cpu {cpu_build}\n" in alone.stdout
