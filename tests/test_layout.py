"""The library's layout: one subpackage per phase, each importing only the phases below it,
and TensorFlow loaded only where a module needs it."""

import subprocess
import sys
from pathlib import Path

import pytest

from support.imports import LIBRARY, imported_names, module_name

# Lowest first: a phase may import the phases before it; `core` is shared by all of them.
PHASES = ("core", "data", "models", "evaluation", ("report", "serving"))
# Outside the phases: the package's start-up, the commands and the DVC write guard.
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py", "classify.py", "compare.py", "dvcwrites.py"}
# A command's doors into the phases that hold its code.
DOORS = {
    "classify.py": ("imgclf.serving.command",),
    "cli.py": (
        "imgclf.serving.command",
        "imgclf.evaluation.runcomparison",
        "imgclf.data.curation",
        "imgclf.report.htmlpage",
    ),
}
# Modules outside models/ and serving/ that must load TensorFlow: tf.data streams the packs.
NEEDS_TENSORFLOW = {"imgclf.data.inputs"}


def phase_rank(module: str) -> int | None:
    """The phase index of a dotted imgclf module, None for the top-level modules."""
    parts = module.split(".")
    if len(parts) < 3:
        return None
    for rank, phase in enumerate(PHASES):
        if parts[1] in (phase if isinstance(phase, tuple) else (phase,)):
            return rank
    return None


def library_modules() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def test_every_module_sits_in_a_phase_or_core() -> None:
    loose = {path.name for path in LIBRARY.glob("*.py")} - TOP_LEVEL
    assert not loose, f"top-level modules outside a phase or core: {sorted(loose)}"


@pytest.mark.parametrize("path", library_modules(), ids=lambda path: module_name(path))
def test_no_module_imports_a_later_phase(path: Path) -> None:
    own = phase_rank(module_name(path))
    if own is None and path.parent == LIBRARY:
        # Top-level modules import core only, and a command alias its own door.
        doors = DOORS.get(path.name, ())
        climbing = {
            name
            for name in imported_names(path)
            if (phase_rank(name) or 0) > 0 and not name.startswith(doors)
        }
        assert not climbing, f"{path.name} is top-level but imports {sorted(climbing)}"
        return
    later = {
        name
        for name in imported_names(path)
        if (rank := phase_rank(name)) is not None and own is not None and rank > own
    }
    assert not later, f"{module_name(path)} imports a later phase: {sorted(later)}"


def test_tensorflow_is_loaded_only_by_models_serving_and_the_input_streams() -> None:
    """Importing every other module in a fresh interpreter leaves TensorFlow unloaded."""
    # (imgclf.__main__ is not imported: importing it runs the command.)
    heavy = ("imgclf.models", "imgclf.serving", "imgclf.classify", "imgclf.__main__")
    heavy += tuple(NEEDS_TENSORFLOW)
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
