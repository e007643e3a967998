"""Experiments on a built pipeline: `dvc exp run -S`, exp show, metrics diff, a queued sweep.

The module copies the session's built project (conftest.built_project); each test starts
from its clean HEAD (experiments stay in their refs).
"""

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from support.project import AFTER_LOGREG_C, Project, experiments, run_queue

pytestmark = pytest.mark.slow


def exp_run(project: Project, *args: str) -> tuple[str, list[str]]:
    """`dvc exp run` in the workspace: the experiment's name and the stages that ran."""
    output = project.dvc("exp", "run", *args).stdout
    (name,) = re.findall(r"Ran experiment\(s\): (\S+)", output)
    return name, re.findall(r"Running stage '([^']+)'", output)


def markdown_rows(table: str) -> list[dict[str, str]]:
    """A Markdown table (`--md`) as one dict per row, keyed by the header's cells."""
    lines = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]
    header, _, *rows = [line for line in lines if line != [""]]
    return [dict(zip(header, row, strict=True)) for row in rows]


def params(project: Project) -> dict[str, Any]:
    return yaml.safe_load((project.root / "params.yaml").read_text(encoding="utf-8"))


def params_at_head(project: Project) -> dict[str, Any]:
    return yaml.safe_load(project.command("git", "show", "HEAD:params.yaml").stdout)


@pytest.fixture(scope="module")
def built(built_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """This module's copy of the built, committed pipeline."""
    project = Project(tmp_path_factory.mktemp("experiments") / "a", template=built_project)
    yield project
    project.dvc("queue", "stop", "--kill", check=False)


@pytest.fixture
def project(built: Project) -> Project:
    """The built repository, its workspace back at HEAD (experiments stay in their refs)."""
    built.command("git", "reset", "-q", "--hard")
    built.dvc("checkout", "-q", "--force")
    assert "up to date" in built.dvc("status").stdout
    return built


def test_an_experiment_reruns_only_what_its_params_affect(project: Project) -> None:
    name, ran = exp_run(project, "-S", "logreg.C=[0.01,0.1]")
    assert sorted(ran) == AFTER_LOGREG_C

    branch = project.command("git", "branch", "--show-current").stdout.strip()
    shown = experiments(project)
    assert shown[name]["params"]["logreg"]["C"] == [0.01, 0.1]
    assert shown[branch]["params"]["logreg"]["C"] == [0.1, 1.0]
    # The table's metrics: the headline (and the provenance records, stage metrics for DVC's
    # run-cache); the stage summaries are outputs.
    declared = [file for file in shown[name]["metrics"] if "/provenance/" not in file]
    assert declared == ["metrics/evaluation/headline.json"]
    headline = shown[name]["metrics"]["metrics/evaluation/headline.json"]

    # `imgclf experiments`: the headline and the changed param, one screen wide.
    table = project.command(sys.executable, "-m", "imgclf", "experiments", "--md").stdout
    rows = markdown_rows(table)
    assert len(rows[0]) <= 30, sorted(rows[0])
    assert "cnn.epochs" not in rows[0]  # unchanged params are left out
    assert not any("/" in column and "test." not in column for column in rows[0])  # no deps
    (row,) = [row for row in rows if row["Experiment"].endswith(f"[{name}]")]
    assert row["logreg.C"] == "['0.01', '0.1']"
    assert float(row["test.accuracy.logreg"]) == pytest.approx(headline["test.accuracy.logreg"])

    # The detailed files stay diffable by name.
    target = ["--targets", "metrics/logreg_search.json"]
    diff = json.loads(project.dvc("metrics", "diff", "HEAD", name, *target, "--json").stdout)
    change = diff["metrics/logreg_search.json"]["C"]
    assert (change["old"], change["new"]) == (0.1, 0.01)
    text = project.dvc("metrics", "diff", "HEAD", name, *target).stdout
    assert re.search(r"metrics/logreg_search\.json +C +0\.1 +0\.01\b", text), text


def test_a_parallel_queued_sweep_runs_every_value_with_its_own_library_and_applies(
    project: Project, built_project: Project
) -> None:
    """An edit to the library queued with the sweep takes effect in its experiments, not in
    the main workspace: DVC runs the queue in copies of the repository, and each stage
    imports the checkout it runs in (stages/_workspace.py). Two workers share one cache and
    give the bytes of a build run alone."""
    library = project.root / "src/imgclf/evaluation/metrics.py"
    original = library.read_text(encoding="utf-8")
    edited = original.replace(
        '"accuracy": accuracy_score(labels, predicted),',
        '"accuracy": accuracy_score(labels, predicted),\n        "probe": 1.0,',
    )
    assert edited != original
    library.write_text(edited, encoding="utf-8")
    queued = project.dvc("exp", "run", "--queue", "-S", "logreg.folds=2,3").stdout
    names = re.findall(r"Queued experiment '([^']+)'", queued)
    assert len(names) == 2
    library.write_text(original, encoding="utf-8")  # the main workspace keeps its own code
    run_queue(project, names, jobs=2)

    shown = experiments(project)
    for name in names:
        logreg = ["--targets", "metrics/evaluation/models/logreg.json", "--json"]
        diff = json.loads(project.dvc("metrics", "diff", "HEAD", name, *logreg).stdout)
        assert diff["metrics/evaluation/models/logreg.json"]["test.probe"]["new"] == 1
    assert project.repro() == []
    head = json.loads((project.root / "metrics/evaluation/models/logreg.json").read_text())
    assert "test.probe" not in head
    folds = {shown[name]["params"]["logreg"]["folds"]: name for name in names}
    assert sorted(folds) == [2, 3]
    project.dvc("exp", "apply", folds[3])
    assert params(project)["logreg"]["folds"] == 3
    # The applied experiment's outputs came with it: nothing is stale.
    assert "up to date" in project.dvc("status").stdout
    project.dvc("exp", "apply", folds[2])
    assert params(project)["logreg"] == params_at_head(project)["logreg"]
    # The HEAD value, run in parallel with another: the bytes of the build run alone.
    alone, parallel = built_project.digests(), project.digests()
    for name in ("models/logreg.skops", "data/predictions/logreg.h5", "metrics/split.json"):
        assert parallel[name] == alone[name], name
