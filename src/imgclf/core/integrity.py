"""Inputs are checked against what DVC recorded when the stage that wrote them ran.

DVC notices a damaged output only when its size or mtime changed; a bit flipped in place, a
file restored from a damaged cache object, or a stage run by hand would otherwise read
damaged data. Every reader of a pipeline file calls `check_intact` first: a file listed as
a stage's output in `dvc.lock` must have the size and MD5 recorded there.
"""

import hashlib
import os
from functools import cache
from pathlib import Path

import yaml

from imgclf.core.errors import UserError

LOCK = "dvc.lock"
_BLOCK = 1 << 20


class DamagedError(UserError):
    """A pipeline file whose bytes differ from those its stage wrote."""


def check_intact(path: Path | str) -> None:
    """Raise DamagedError, naming the commands that repair it, if `path` is an output in the
    current repository's dvc.lock and its size or MD5 differ from the recorded ones."""
    root = os.path.abspath(os.environ.get("DVC_ROOT") or os.getcwd())
    path = Path(path)
    try:  # (not resolved: an output may be a link into DVC's cache)
        relative = Path(os.path.abspath(path)).relative_to(root).as_posix()
        stat = path.stat()
    except (ValueError, OSError):  # outside the repository, or missing: the reader says so
        return
    recorded = _recorded_outputs(Path(root, LOCK)).get(relative)
    if recorded is None:
        return
    stage, size, md5 = recorded
    if _verified(os.path.abspath(path), stat.st_size, stat.st_mtime_ns, size, md5):
        return
    # (`dvc checkout --force` alone would trust the size and mtime it saw before.)
    raise DamagedError(
        f"{path}: damaged: not the bytes that stage '{stage}' wrote (size or MD5 differ from "
        f"{LOCK}); rebuild it with `dvc repro -f -s {stage}`, or put back DVC's copy with "
        f"`rm {relative} && dvc checkout {relative}`"
    )


@cache
def _verified(path: str, size: int, mtime_ns: int, want_size: int, want_md5: str) -> bool:
    """Whether the file (as of this size and mtime) has the wanted size and MD5; each
    version of a file is hashed once per process."""
    if size != want_size:
        return False
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest() == want_md5


def not_found(path: Path | str) -> UserError:
    """The error for a missing input, naming the commands that bring it back when `path` is
    (or lies in) an output in dvc.lock: a fresh clone has the lock but none of DVC's files
    until `dvc pull`."""
    root = os.path.abspath(os.environ.get("DVC_ROOT") or os.getcwd())
    try:
        relative = Path(os.path.abspath(path)).relative_to(root)
    except ValueError:
        return UserError(f"{path}: file not found")
    stages = _output_stages(Path(root, LOCK))
    for out in (relative, *relative.parents):
        if (stage := stages.get(out.as_posix())) is not None:
            return UserError(
                f"{path}: file not found; it is an output of stage '{stage}': fetch it with "
                f"`dvc pull {out.as_posix()}` or build it with `dvc repro {stage}`"
            )
    return UserError(f"{path}: file not found")


def _recorded_outputs(lock: Path) -> dict[str, tuple[str, int, str]]:
    """{output path: (stage, size, md5)} for the file outputs in `lock` (none if absent)."""
    outputs = {}
    for stage, out in _lock_outputs(lock):
        if "md5" in out and "size" in out and not out["md5"].endswith(".dir"):
            outputs[out["path"]] = (stage, int(out["size"]), out["md5"])
    return outputs


def _output_stages(lock: Path) -> dict[str, str]:
    """{output path: stage} for every output in `lock`, folders included."""
    return {out["path"]: stage for stage, out in _lock_outputs(lock) if "path" in out}


def _lock_outputs(lock: Path) -> list[tuple[str, dict]]:
    """(stage, output entry) for the outputs and metrics in `lock` (none if absent)."""
    try:
        stat = lock.stat()
    except OSError:
        return []
    return _parse_lock(str(lock), stat.st_mtime_ns, stat.st_size)


@cache
def _parse_lock(lock: str, mtime_ns: int, size: int) -> list[tuple[str, dict]]:
    """(Keyed by mtime and size too: DVC rewrites the lock as stages finish.)"""
    try:
        stages = (yaml.safe_load(Path(lock).read_text(encoding="utf-8")) or {}).get("stages")
    except (OSError, yaml.YAMLError):
        return []
    return [
        (stage, out)
        for stage, entry in (stages or {}).items()
        for out in [*entry.get("outs", []), *entry.get("metrics", [])]
    ]
