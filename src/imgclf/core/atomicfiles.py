"""Files that appear whole or not at all: the temporary name beside a file being written, its
rename into place, and the clean-up of what a killed writer left.

Light on purpose (standard library only): DVC's own processes load it through
`imgclf.dvcwrites`, and nothing heavy may slow every `dvc` command.
"""

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# `.<stem>.<pid>.tmp<suffix>`: the name a file gets while it is written.
TEMPORARY_NAME = re.compile(r"\.(?P<stem>.*)\.(?P<pid>[0-9]+)\.tmp(?P<suffix>\.[^.]*)?")


def temporary_beside(path: Path) -> Path:
    """The temporary name of `path` for this process, in the same folder (a rename across
    file systems is not atomic). The suffix stays: some writers insist on it (Keras wants
    `.keras`)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def remove(path: Path) -> None:
    """Delete a file or a folder, if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def remove_dead_temporaries(folder: Path) -> list[str]:
    """Delete the temporary files in `folder` whose writer is no longer running: what a
    process killed mid-write (kill -9, power loss) left, as large as the file it was writing.
    Returns the names removed, sorted."""
    removed = []
    for candidate in sorted(folder.glob(".*.tmp*")):
        match = TEMPORARY_NAME.fullmatch(candidate.name)
        if match is None or _running(int(match["pid"])):
            continue
        remove(candidate)
        removed.append(candidate.name)
    return removed


def _running(pid: int) -> bool:
    """Whether a process `pid` exists (one of another user counts too) and is not a zombie:
    a writer killed after its parent is reparented to PID 1, and in a container PID 1 often
    never reaps it, so the dead writer would keep its temporary forever."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: the state letter follows the command name's closing parenthesis
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS) or the process just ended: keep its file this time
    return state not in ("Z", "X")


@contextlib.contextmanager
def whole_file(path: Path | str, mode: str = "w", encoding: str | None = None) -> Iterator[IO]:
    """Open `path` for writing so that it changes only when the block succeeds: the stream
    writes a temporary beside it, which is flushed to disk and renamed over `path` (with its
    folder synced, so the rename survives a power loss too). A failed or killed block leaves
    `path` as it was."""
    path = Path(os.path.realpath(path))  # a link stays a link: its target is replaced
    remove_dead_temporaries(path.parent)
    temporary = temporary_beside(path)
    try:
        with open(temporary, mode, encoding=encoding) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        sync_folder(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def sync_to_disk(path: Path) -> None:
    """Flush a file, or everything in a folder (its files and its folders' entries), to the
    disk."""
    if not path.is_dir():
        _fsync(path)
        return
    for parent, _, files in os.walk(path, topdown=False):
        for name in files:
            _fsync(Path(parent, name))
        _fsync(Path(parent))


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (not its files' contents): the names created or renamed in it
    then survive a power loss."""
    _fsync(folder)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
