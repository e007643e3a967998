"""Each stage's `params:` in dvc.yaml are exactly the keys it reads: a key it reads but does
not declare would change its output without DVC rerunning it; a key it declares but never
reads would rerun it for nothing. The session's built project ran every stage with
`recorder/sitecustomize.py` recording the keys each stage process read."""

import json

import pytest
import yaml

from support.project import Project

pytestmark = pytest.mark.slow


def covered(key: str, by: set[str]) -> bool:
    """Whether `key` is one of `by` or inside one of them (`cnn` covers `cnn.arch`)."""
    return any(key == other or key.startswith(other + ".") for other in by)


def stage_reads(project: Project) -> dict[str, set[str]]:
    """{stage name: keys its process read}, matching each record to its stage's command."""
    spec = yaml.safe_load((project.root / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    commands = {name: project.stage_command(name) for name in spec}
    reads = {}
    for record in sorted(project.params_log.glob("*.json")):
        data = json.loads(record.read_text(encoding="utf-8"))
        if not data["argv"][0].startswith("stages/"):
            continue  # dvc itself, or another Python process it started
        argv = " ".join(data["argv"])
        [name] = [name for name, command in commands.items() if command.endswith(argv)]
        # Worker processes (scikit-learn's) start with their parent's argv: merge.
        reads.setdefault(name, set()).update(data["read"])
    return reads


def declared(project: Project, stage: str) -> set[str]:
    name, _, _ = stage.partition("@")
    spec = yaml.safe_load((project.root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return set(spec[name].get("do", spec[name]).get("params", []))


def test_every_stage_declares_exactly_the_params_it_reads(built_project: Project) -> None:
    reads = stage_reads(built_project)
    assert sorted(reads) == sorted(built_project.first_run)
    problems = {}
    for stage, read in reads.items():
        keys = declared(built_project, stage)
        undeclared = sorted(key for key in read if not covered(key, keys))
        unread = sorted(key for key in keys if not any(covered(r, {key}) for r in read))
        problems[stage] = (undeclared, unread)
    assert {stage: found for stage, found in problems.items() if found != ([], [])} == {}
