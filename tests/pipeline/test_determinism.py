"""`base.deterministic: true` gives the same bytes on the same CPU model whatever its core
count: one core (CPU affinity) and a three-thread machine with oneDNN capped at AVX2 (the
libraries' own switches), for the training, feature, prediction and logistic-regression
stages; and a training stage killed mid-run resumes to the bytes of an uninterrupted run.
(Other CPU models: test_cpu_models.py.)"""

import hashlib
import re
import signal
from pathlib import Path

import pytest

from support.project import Project

pytestmark = pytest.mark.slow

STAGES = ["cnn@0", "features@train", "predict_cnn@0", "logreg"]
OUTPUTS = [
    "models/cnn/seed0.keras",
    "plots/training/cnn/seed0.csv",
    "data/features/train.h5",
    "data/predictions/cnn/seed0.h5",
    "models/logreg.skops",
]
# What another machine of the same CPU model changes: how many cores TensorFlow, OpenBLAS and
# OpenMP spread their sums over; and a cap on the instruction sets oneDNN may use.
MACHINES = {
    "one core": (["taskset", "-c", "0"], {}),
    "an AVX2-only CPU with three cores": (
        [],
        {
            "ONEDNN_MAX_CPU_ISA": "AVX2",
            "TF_NUM_INTRAOP_THREADS": "3",
            "OPENBLAS_NUM_THREADS": "3",
            "OMP_NUM_THREADS": "3",
        },
    ),
}


def digests(project: Project) -> dict[str, str]:
    return {name: hashlib.md5((project.root / name).read_bytes()).hexdigest() for name in OUTPUTS}


@pytest.mark.parametrize("machine", MACHINES)
def test_other_cores_and_kernel_caps_give_the_same_bytes(
    built_project: Project, tmp_path: Path, machine: str
) -> None:
    prefix, environment = MACHINES[machine]
    project = Project(tmp_path / "project", template=built_project)
    project.env = {**project.env, **environment}
    result = project.command(*prefix, *project.dvc_argv("repro", "-f", "-s", *STAGES))
    assert sorted(re.findall(r"Running stage '([^']+)'", result.stdout)) == sorted(STAGES)
    assert digests(project) == digests(built_project)


def test_a_killed_training_resumes_to_the_same_bytes(built_project: Project, tmp_path: Path):
    """SIGKILL once the first of two epochs is checkpointed (a hang guard of 300 s, not a
    speed claim); the rerun trains only the second and writes the model and curves of the
    uninterrupted run."""
    project = Project(tmp_path / "project", template=built_project)
    for name in ("models/cnn/seed0.keras", "plots/training/cnn/seed0.csv"):
        (project.root / name).unlink()
    checkpoint = project.root / "models/cnn/seed0.keras.state/checkpoint.npz"
    # Killed at the first thing it does once the checkpoint is in place.
    faulty = project.with_fault(at="rename", match=r"checkpoint\.npz$", after=True, kill="group")
    training = faulty.start(faulty.stage_command("cnn@0"))
    assert training.wait(timeout=300) == -signal.SIGKILL, "the run was not killed"
    assert checkpoint.exists()
    assert not (project.root / "models/cnn/seed0.keras").exists()
    # The stage's own command: `dvc repro` would restore the run from DVC's run-cache.
    resumed = project.command("bash", "-c", project.stage_command("cnn@0"))
    assert "trained 1 epochs (of 2)" in resumed.stderr
    assert digests(project) == digests(built_project)
    assert not checkpoint.parent.exists()
