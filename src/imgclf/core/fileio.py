"""Atomic, deterministic writes of small files (CSV, JSON) and the temp-then-rename helper.

Every output is written under a temporary name in its own folder and renamed when complete,
so a killed stage never leaves a file that looks valid.
"""

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from imgclf.core.atomicfiles import (
    remove,
    remove_dead_temporaries,
    sync_folder,
    sync_to_disk,
    temporary_beside,
)
from imgclf.core.errors import DiskFullError, UserError
from imgclf.core.integrity import check_intact, not_found

OUT_OF_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


@contextlib.contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` only if the block succeeds.

    The block may make a file or a folder there (a SavedModel is a folder); a folder
    replaces only a missing or empty `path`. What it made is on the disk before the rename,
    and the rename is once its folder is synced: a power loss leaves the old output or the
    whole new one, never a renamed file whose blocks were still in memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(path.parent)
    temporary = temporary_beside(path)
    remove(temporary)
    try:
        yield temporary
        sync_to_disk(temporary)
        os.replace(temporary, path)
        sync_folder(path.parent)
    except (OSError, RuntimeError) as error:
        if (code := out_of_space(error)) is None:
            raise
        raise DiskFullError(path, code) from None
    finally:
        remove(temporary)


def out_of_space(error: BaseException) -> int | None:
    """The errno behind `error` if it is a full disk, a quota or a file-size limit, else
    None. (HDF5 raises RuntimeError too, and gives the errno in its message.)"""
    if isinstance(error, OSError) and error.errno in OUT_OF_SPACE:
        return error.errno
    code = re.search(r"\berrno = (\d+)", str(error))
    return int(code[1]) if code and int(code[1]) in OUT_OF_SPACE else None


def remove_stale(folder: Path, keep: Iterable[str]) -> list[str]:
    """Delete what `folder` holds besides the names in `keep` (and DVC's .gitignore): the
    outputs of stages that params no longer make, such as a seed dropped from cnn.seeds.

    The stage that reads `folder` as a dependency calls this before DVC hashes it, so the
    lock records what a fresh clone would have. Returns the names removed, sorted."""
    if not folder.is_dir():
        return []
    stale = sorted(
        path.name for path in folder.iterdir() if path.name not in {*keep, ".gitignore"}
    )
    for name in stale:
        remove(folder / name)
    return stale


def write_json(path: Path | str, data: dict[str, Any]) -> None:
    """Write `data` as indented JSON with sorted keys and a final newline."""
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path | str) -> dict[str, Any]:
    """Read a JSON object, with a one-line error when the file is missing or malformed."""
    check_intact(path)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise not_found(path) from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None


def write_csv(path: Path | str, frame: pd.DataFrame) -> None:
    """Write a DataFrame as UTF-8 CSV with '\\n' line endings and no index column."""
    with atomic_output(path) as temporary:
        frame.to_csv(temporary, index=False, lineterminator="\n", encoding="utf-8")


def read_csv(path: Path | str, columns: Sequence[str]) -> pd.DataFrame:
    """Read a CSV written by `write_csv`, checking that it has `columns`; text stays text."""
    check_intact(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise not_found(path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not a readable CSV file ({error})") from None
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}"
        )
    return frame
