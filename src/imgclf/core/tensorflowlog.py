"""TensorFlow's start-up notices held to `TF_CPP_MIN_LOG_LEVEL`, which imgclf sets to 2.

TensorFlow logs through abseil, and abseil prints what is logged before its logging starts
straight to stderr, whatever the level says: every `import tensorflow` printed abseil's note
about it and oneDNN's INFO notice, twice, in every stage. So the first import of tensorflow
runs with file descriptor 2 pointed at a temporary file, and what it wrote is then passed on
without the abseil lines under the level (and abseil's note, a warning about them). Anything
else written meanwhile, a Python warning or an error, is passed on as written; without a
level (unset or 0) nothing is held back.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

SEVERITIES = "IWEF"  # abseil's INFO, WARNING, ERROR, FATAL: TF_CPP_MIN_LOG_LEVEL 0 to 3
# An abseil record: severity, MMDD, time (before logging starts: 00:00:<epoch seconds>),
# thread id, file:line].
_RECORD = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
ABSEIL_NOTE = "WARNING: All log messages before absl::InitializeLog() is called are written to"


def log_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (anything but 1 to 3 is 0)."""
    value = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip()
    return int(value) if value in ("1", "2", "3") else 0


def passed_on(text: str, level: int) -> str:
    """`text` without the abseil records under `level` (and abseil's note when level ≥ 1)."""
    kept = []
    for line in text.splitlines(keepends=True):
        record = _RECORD.match(line)
        if record and SEVERITIES.index(record.group(1)) < level:
            continue
        if level >= 1 and line.startswith(ABSEIL_NOTE):
            continue
        kept.append(line)
    return "".join(kept)


@contextmanager
def held_back_stderr(level: int) -> Iterator[None]:
    """Whatever the process writes to stderr meanwhile, passed on after, filtered."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            sys.stderr.write(passed_on(held.read().decode(errors="replace"), level))
            sys.stderr.flush()


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once, as Python would, and runs its import under
    `held_back_stderr`."""

    def find_spec(
        self, name: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            with held_back_stderr(log_level()):
                run(module)

        spec.loader.exec_module = exec_module  # this spec's own loader
        return spec


def hold_start_up_notices() -> None:
    """Before tensorflow is imported, with a level set: filter its import's stderr."""
    if "tensorflow" in sys.modules or log_level() == 0:
        return
    if not any(isinstance(finder, _QuietFirstImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFirstImport())
