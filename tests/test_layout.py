"""The library's layout: one subpackage per phase, each importing only the phases below it,
and TensorFlow loaded only where a module needs it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

LIBRARY = REPO / "src" / "imgclf"
# Lowest first: a phase may import the shared top-level modules and the phases before it.
PHASES = ("data", "models", "evaluation", ("report", "serving"))
# Modules outside models/ and serving/ that must load TensorFlow: tf.data streams the packs.
NEEDS_TENSORFLOW = {"imgclf.data.inputs"}


def phase_rank(module: str) -> int | None:
    """The phase index of a dotted imgclf module, None for the shared top-level modules."""
    parts = module.split(".")
    if len(parts) < 3:
        return None
    for rank, phase in enumerate(PHASES):
        if parts[1] in (phase if isinstance(phase, tuple) else (phase,)):
            return rank
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imgclf_imports(path: Path) -> set[str]:
    """Absolute names of the imgclf modules `path` imports (relative imports resolved)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from ..models import y
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            names |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return {name for name in names if name.startswith("imgclf.")}


def library_modules() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def test_every_module_sits_in_a_phase_or_is_shared() -> None:
    shared = {"__init__.py", "classify.py", "cli.py", "config.py", "errors.py", "fileio.py"}
    shared.update({"kernels.py", "integrity.py", "atomicfiles.py", "dvcwrites.py"})
    loose = {path.name for path in LIBRARY.glob("*.py")} - shared
    assert not loose, f"top-level modules outside a phase: {sorted(loose)}"


@pytest.mark.parametrize("path", library_modules(), ids=lambda path: module_name(path))
def test_no_module_imports_a_later_phase(path: Path) -> None:
    own = phase_rank(module_name(path))
    if own is None and path.parent == LIBRARY:
        # Shared modules import no phase; the classify alias is the one door into serving.
        door = "imgclf.serving.classify" if path.name == "classify.py" else None
        climbing = {
            name
            for name in imgclf_imports(path)
            if phase_rank(name) is not None and not (door and name.startswith(door))
        }
        assert not climbing, f"{path.name} is shared but imports {sorted(climbing)}"
        return
    later = {
        name
        for name in imgclf_imports(path)
        if (rank := phase_rank(name)) is not None and own is not None and rank > own
    }
    assert not later, f"{module_name(path)} imports a later phase: {sorted(later)}"


def test_tensorflow_is_loaded_only_by_models_serving_and_the_input_streams() -> None:
    """Importing every other module in a fresh interpreter leaves TensorFlow unloaded."""
    heavy = ("imgclf.models", "imgclf.serving", "imgclf.classify", *NEEDS_TENSORFLOW)
    light = [
        name
        for name in map(module_name, library_modules())
        if not any(name == prefix or name.startswith(prefix + ".") for prefix in heavy)
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {light!r}:\n"
        "    importlib.import_module(name)\n"
        "    assert 'tensorflow' not in sys.modules, name + ' loads TensorFlow'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
