"""dvc.yaml lists exactly the library modules each stage imports, so a code change reruns
the stages it affects and no others."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO

LIBRARY = REPO / "src" / "imgclf"


def module_file(dotted: str) -> Path | None:
    """The file of imgclf module `dotted` (a package's __init__.py), if it is one."""
    parts = dotted.split(".")
    if parts[0] != "imgclf" or len(parts) < 2:
        return None
    base = LIBRARY.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """imgclf files (relative to src/imgclf) that `path` imports, directly or indirectly."""
    found: set[str] = set()
    pending = [path]
    while pending:
        tree = ast.parse(pending.pop().read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                module = module_file(name)
                if module is not None:
                    relative = module.relative_to(LIBRARY).as_posix()
                    if relative not in found:
                        found.add(relative)
                        pending.append(module)
    return found


def listed_modules(deps: list[str]) -> set[str]:
    """imgclf files named in a stage's deps; a folder stands for every file in it."""
    listed = set()
    for dep in deps:
        if dep.startswith("src/imgclf/"):
            path = REPO / dep
            files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            listed |= {file.relative_to(LIBRARY).as_posix() for file in files}
    return listed


def stages() -> list[tuple[str, dict]]:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return [(name, stage.get("do", stage)) for name, stage in spec.items()]


@pytest.mark.parametrize(("name", "stage"), stages(), ids=[name for name, _ in stages()])
def test_deps_list_every_imported_module(name: str, stage: dict) -> None:
    script = re.search(r"python (stages/\w+\.py)", stage["cmd"]).group(1)
    assert script in stage["deps"]
    assert listed_modules(stage["deps"]) == imported_modules(REPO / script)
