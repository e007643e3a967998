"""dvc.yaml lists exactly the library modules each stage imports, so a code change reruns
the stages it affects and no others."""

import ast
import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO

LIBRARY = REPO / "src" / "imgclf"


def imported_modules(path: Path) -> set[str]:
    """imgclf modules imported by `path`, directly or through other imgclf modules."""
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
                parts = name.split(".")
                if parts[0] == "imgclf" and len(parts) > 1:
                    module = LIBRARY.joinpath(*parts[1:]).with_suffix(".py")
                    if module.exists() and module.name not in found:
                        found.add(module.name)
                        pending.append(module)
    return found


def stages() -> list[tuple[str, dict]]:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return [(name, stage.get("do", stage)) for name, stage in spec.items()]


@pytest.mark.parametrize(("name", "stage"), stages(), ids=[name for name, _ in stages()])
def test_deps_list_every_imported_module(name: str, stage: dict) -> None:
    script = re.search(r"python (stages/\w+\.py)", stage["cmd"]).group(1)
    assert script in stage["deps"]
    listed = {Path(dep).name for dep in stage["deps"] if dep.startswith("src/imgclf/")}
    assert listed == imported_modules(REPO / script)
