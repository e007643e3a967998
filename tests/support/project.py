"""A copy of the real pipeline (dvc.yaml, stages, library) in a temporary git + DVC
repository, with tiny images and its own params.yaml: what the end-to-end tests run."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from support import REPO
from support.images import write_image_folder
from support.params import repo_params_dict

# The folder of the pretraining packs is in git, as the backbone stage's dependency.
PRETRAIN_PLACEHOLDER = "data/processed/pretrain/.gitignore"
SPLITS = ("train", "val", "test")
# What a new logreg.C reruns: the model, its predictions and what reads them; not the
# features. The audit too (its out-of-fold probabilities use the C that logreg chose), and the
# export (it may export logreg), its predictions and their scores.
AFTER_LOGREG_C = [
    "audit",
    "ensemble",
    "evaluate",
    "export",
    "logreg",
    "predict_export",
    "predict_logreg",
    "report",
    "score_export",
]


@dataclass(frozen=True)
class Output:
    """One file a stage of dvc.yaml writes (a folder output's files one by one)."""

    path: str
    out: str  # the DVC output that holds it (the file itself, or its folder)
    cached: bool  # in the DVC cache (not `cache: false`, which git holds)
    pushed: bool  # sent to remotes (not `push: false`)


def pipeline_outputs(root: Path) -> list[Output]:
    """Every file that the stages of `root`'s dvc.yaml wrote, as DVC reads that file: the
    list cannot drift from the pipeline. (Files added with `dvc add` are not stage outputs.)"""
    from dvc.repo import Repo  # (slow to import: only the tests that build a project need it)

    with Repo(str(root)) as repo:
        outs = [out for stage in repo.index.stages if stage.cmd for out in stage.outs]
    files = []
    for out in outs:
        path = Path(out.fs_path)
        held = sorted(path.rglob("*")) if path.is_dir() else [path]
        out_name = path.relative_to(root).as_posix()
        files += [
            Output(file.relative_to(root).as_posix(), out_name, out.use_cache, out.can_push)
            for file in held
            if file.is_file()
        ]
    return files


class Project:
    """A copy of the pipeline in `root`, with tiny images and its own params.yaml."""

    def __init__(
        self, root: Path, template: "Project | None" = None, *, existing: bool = False
    ) -> None:
        """A new project in `root`, a copy of `template` (a built one saves minutes), or the
        `existing` one that another process made in `root`."""
        self.root = root
        self.first_run: list[str] = []  # the stages the first `repro` ran (set by fixtures)
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        # Where stage processes record the params they read, if `record_params` was called.
        self.params_log = root.with_name(root.name + "-params-read")
        if existing:
            return
        if template is not None:
            shutil.copytree(template.root, root, symlinks=True)
            return
        root.mkdir(parents=True)
        # bench/results: the report shows the committed bench figures beside the exports.
        for name in (
            "dvc.yaml",
            ".dvcignore",
            "stages",
            "src",
            "bench/results",
            "data/curation.csv",
            PRETRAIN_PLACEHOLDER,
        ):
            source, target = REPO / name, root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            copy = shutil.copytree if source.is_dir() else shutil.copy2
            copy(source, target)
        write_image_folder(root / "data" / "images")
        write_image_folder(root / "data" / "source", per_class=6)
        params = repo_params_dict()
        params["base"]["image_size"] = [24, 24]
        params["data"]["source"] = "data/images"
        params["split"].update(val=0.25, test=0.25)
        params["pack"]["batch_size"] = 5
        params["cnn"].update(seeds=[0], crop=[20, 20], epochs=2, batch_size=8)
        params["backbone"]["pretrain"].update(
            sources=["data/source"], epochs=1, batch_size=8, val=0.2
        )
        params["logreg"].update(C=[0.1, 1.0], folds=2)
        params["finetune"].update(batch_size=8, warmup_epochs=1, epochs=1, unfreeze=4)
        params["export"].update(calibration_images=8)
        self.write_params(params)
        self.command("git", "init", "-q")
        self.dvc("init", "-q")
        self.dvc("config", "core.analytics", "false")
        # `dvc exp run` needs a commit to start from.
        self.commit("pipeline")

    def record_params(self) -> None:
        """Have every stage process this project runs record the params keys it reads
        (tests/pipeline/recorder/sitecustomize.py)."""
        recorder = REPO / "tests" / "pipeline" / "recorder"
        self.env = {**self.env, "PYTHONPATH": str(recorder)}
        self.env["IMGCLF_TEST_PARAMS_LOG"] = str(self.params_log)

    def with_fault(self, log: Path | None = None, **fault: object) -> "Project":
        """This project seen by processes that inject one fault at an exact moment
        (tests/pipeline/faults/sitecustomize.py); `log` gets a line when it fires."""
        faulty = Project(self.root, existing=True)
        faults = REPO / "tests" / "pipeline" / "faults"
        if log is not None:
            fault["log"] = str(log)
        faulty.env = {**self.env, "PYTHONPATH": str(faults)}
        faulty.env["IMGCLF_TEST_FAULT"] = json.dumps(fault)
        return faulty

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
        return self.command(*self.dvc_argv(*args), check=check)

    def repro(self, *targets: str) -> list[str]:
        """Run `dvc repro`; return the stages that actually ran."""
        return re.findall(r"Running stage '([^']+)'", self.dvc("repro", *targets).stdout)

    def digests(self) -> dict[str, str]:
        """SHA-256 of every file the pipeline's stages wrote (the report's figures too)."""
        return {
            output.path: hashlib.sha256((self.root / output.path).read_bytes()).hexdigest()
            for output in pipeline_outputs(self.root)
        }

    def figures(self) -> list[Path]:
        return [path for path in (self.root / "reports").rglob("*.png")]

    def dvc_argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "dvc", *args]

    def start(self, argv: list[str] | str, *, output: bool = False) -> subprocess.Popen:
        """Start a command (a shell line if a string) in the project without waiting, in a
        session of its own so that a test can kill it with all its children; `output`
        pipes stdout and stderr together as text, else both are discarded."""
        return subprocess.Popen(
            argv,
            shell=isinstance(argv, str),
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if output else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def stage_command(self, stage: str) -> str:
        """A stage's shell command, as DVC resolved it when it last ran (from dvc.lock)."""
        lock = yaml.safe_load((self.root / "dvc.lock").read_text(encoding="utf-8"))
        return lock["stages"][stage]["cmd"]


QUEUE_TIMEOUT_S = 600  # a hang guard, not a speed claim


def run_queue(project: Project, names: list[str], jobs: int = 1) -> None:
    """`dvc queue start -j jobs`, then wait until the queued experiments `names` all
    succeeded."""
    project.dvc("queue", "start", "-j", str(jobs))  # returns at once; workers run them
    deadline = time.monotonic() + QUEUE_TIMEOUT_S
    while re.search(r"\b(Queued|Running)\b", status := project.dvc("queue", "status").stdout):
        assert time.monotonic() < deadline, f"queue still busy:\n{status}"
        time.sleep(2)
    assert all(re.search(rf"{name}\b.*\bSuccess\b", status) for name in names), status


def experiments(project: Project) -> dict[str, dict[str, Any]]:
    """`dvc exp show --json` as {name: {"params": params.yaml, "metrics": {file: values}}}.

    The baseline is named by its branch. (DVC 3.67 keeps every param in the JSON even with
    --only-changed; only the tables drop the unchanged ones.)
    """
    table = json.loads(project.dvc("exp", "show", "--only-changed", "--json").stdout)
    found = {}
    for baseline in table:
        revs = [rev for group in baseline.get("experiments") or [] for rev in group["revs"]]
        for experiment in [baseline, *revs]:
            data = experiment["data"]
            found[experiment["name"] or experiment["rev"]] = {
                "params": data["params"]["params.yaml"]["data"],
                "metrics": {name: file["data"] for name, file in data["metrics"].items()},
            }
    return found
