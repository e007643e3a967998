"""dvc.yaml lists exactly the library files each stage runs, so a code change reruns the
stages it affects and no others: every module a stage imports, directly or not, with the
package `__init__.py` files Python runs on the way (relative imports included). `core`, which
every stage imports, is one dependency: its folder. A package `__init__.py` that holds only its
docstring runs no code, so no output depends on it: it is not listed (and once it holds code,
this test asks for it)."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from support import REPO
from support.imports import LIBRARY, imported_files, runs_code

CORE = "src/imgclf/core"


def listed_files(deps: list[str]) -> set[Path]:
    """Library files named in a stage's deps; a folder stands for every file in it (a phase
    folder, like `core`, may hold modules the stage does not import)."""
    listed = set()
    for dep in deps:
        if dep.startswith("src/imgclf"):
            path = REPO / dep
            listed |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return listed


def stages() -> list[tuple[str, dict]]:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return [(name, stage.get("do", stage)) for name, stage in spec.items()]


def relative(files: set[Path]) -> list[str]:
    return sorted(file.relative_to(LIBRARY.parent.parent).as_posix() for file in files)


@pytest.mark.parametrize(("name", "stage"), stages(), ids=[name for name, _ in stages()])
def test_deps_list_every_file_the_stage_runs(name: str, stage: dict) -> None:
    script = re.search(r"python (stages/\w+\.py)", stage["cmd"]).group(1)
    assert script in stage["deps"]
    assert CORE in stage["deps"]
    listed, imported = (
        relative(listed_files(stage["deps"])),
        relative({file for file in imported_files(REPO / script) if runs_code(file)}),
    )
    assert set(imported) <= set(listed), f"not declared: {sorted(set(imported) - set(listed))}"
    folders = tuple(dep + "/" for dep in stage["deps"] if (REPO / dep).is_dir())
    unused = {file for file in set(listed) - set(imported) if not file.startswith(folders)}
    assert not unused, f"declared but not imported: {sorted(unused)}"


@pytest.mark.parametrize(("name", "stage"), stages(), ids=[name for name, _ in stages()])
def test_stages_import_their_own_checkout_first(name: str, stage: dict) -> None:
    """`import _workspace` comes before any imgclf import (and is a dependency): a queued
    experiment's copy of the repository then runs its own library, not the original's."""
    script = REPO / re.search(r"python (stages/\w+\.py)", stage["cmd"]).group(1)
    assert "stages/_workspace.py" in stage["deps"]
    imports = [
        node
        for node in ast.parse(script.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    names = [
        node.module if isinstance(node, ast.ImportFrom) else node.names[0].name for node in imports
    ]
    first_library = next(i for i, name in enumerate(names) if name.startswith("imgclf"))
    assert "_workspace" in names[:first_library]
