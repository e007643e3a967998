"""Run by Python at start-up in the project's virtual environment (a `.pth` file that
`make install` writes; see `imgclf.dvcwrites`): once DVC's serializers, its rwlock or its
config load, `imgclf.dvcwrites` makes them write whole files; the view of a push or fetch is
collected afresh; dulwich's lock files name their repair.

It imports nothing of imgclf or DVC itself, so a process that never imports DVC (pip, a stage
that does not use it) pays nothing but a look at the module names it imports.
"""

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

PATCHED = (
    "dvc.utils.serialize",
    "dvc.rwlock",
    "dvc.config",
    "dvc_data.index.fetch",
    "dulwich.file",
)


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds DVC's modules as Python would, and patches each right after it has run."""

    def find_spec(self, name, path, target=None):
        if name not in PATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module

        def run_then_patch(module: ModuleType) -> None:
            run_module(module)
            from imgclf.dvcwrites import patch

            patch(module)

        spec.loader.exec_module = run_then_patch
        return spec


def watch_dvc_imports() -> None:
    """Patch DVC's writers when they load (once, however often `site` runs this)."""
    if not any(isinstance(finder, _PatchAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())
