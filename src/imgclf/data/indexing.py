"""Find every image under a source folder, label it, check that it decodes, and record its
size, the MD5 of its bytes and two fingerprints of its pixels (hashing.py).

Labels come from the first folder level (class-per-subfolder), from a regex on the file
name (Kaggle's `cat.123.jpg`), or from a CSV manifest `path,label`. Anything that is not a
usable image is listed with its reason instead of stopping the run; hidden files and the
operating systems' own files (Thumbs.db, desktop.ini) are ignored. With `data.predefined`,
the dataset's own split is kept in a `split` column: the first folder level (train/, val/,
test/, each holding the usual layout) or the CSV's `split` column.
The source folder is only ever read. `index` is the only stage that depends on the folder:
the hashes carry its content through the manifest and the splits to `pack`, which checks
them as it reads, so one walk of the folder per `dvc status` is enough.
"""

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from imgclf.core.config import DataParams
from imgclf.core.errors import UserError
from imgclf.core.fileio import read_csv
from imgclf.data.imaging import image_facts
from imgclf.data.parallel import ordered_map
from imgclf.data.splitting import SPLITS

# pixel_hash and phash (see hashing.py) find duplicates; `split` groups by them.
MANIFEST_COLUMNS = ["path", "label", "width", "height", "md5", "pixel_hash", "phash"]
REJECTED_COLUMNS = ["path", "reason"]
# Files that operating systems drop into image folders; skipped like hidden files (and listed
# in .dvcignore, so that DVC does not rerun index for them either).
OS_FILES = {"thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Index:
    """Accepted images (sorted by path) and rejected files with their reasons."""

    manifest: pd.DataFrame
    rejected: pd.DataFrame

    @property
    def rejected_fraction(self) -> float:
        total = len(self.manifest) + len(self.rejected)
        return len(self.rejected) / total if total else 0.0

    def summary(self) -> dict[str, int]:
        return {
            "images": len(self.manifest),
            "rejected": len(self.rejected),
            "classes": int(self.manifest["label"].nunique()),
        }


def build_index(params: DataParams, workers: int = 1) -> Index:
    """List, label and decode-check the images of `params.source`."""
    root = Path(params.source)
    if not root.is_dir():
        raise UserError(f"data.source = {params.source!r}: no such folder")
    given: dict[str, str] | None = {} if params.predefined else None  # path -> its split
    if params.labels == "csv":
        labelled, rejected = _labels_from_csv(root, params.manifest, given)
    else:
        labelled, rejected = _labels_from_walk(root, params, given)
    checked = _check_decodes(root, labelled, workers)
    rejected += [(path, facts) for path, _, facts in checked if isinstance(facts, str)]
    rows = [(path, label, *facts) for path, label, facts in checked if not isinstance(facts, str)]
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("path")
    if given is not None:
        manifest["split"] = manifest["path"].map(given)
    rejected_frame = pd.DataFrame(rejected, columns=REJECTED_COLUMNS).sort_values("path")
    if manifest.empty:
        raise UserError(
            f"data.source = {params.source!r}: no usable images found "
            f"({len(rejected_frame)} files rejected)"
        )
    return Index(manifest.reset_index(drop=True), rejected_frame.reset_index(drop=True))


def _labels_from_walk(
    root: Path, params: DataParams, given: dict[str, str] | None
) -> tuple[list, list]:
    """Labels from folders or file names; with `given`, the first folder names the split
    (recorded in `given`) and the class folder comes below it."""
    pattern = re.compile(params.pattern)
    labelled, rejected = [], []
    for path, problem in _walk(root):
        parts = PurePosixPath(path).parts
        if given is not None and not problem:
            if len(parts) < 2 or parts[0] not in SPLITS:
                rejected.append((path, "not inside a train/, val/ or test/ folder"))
                continue
            given[path], parts = parts[0], parts[1:]
        if problem:
            rejected.append((path, problem))
        elif params.labels == "folder" and len(parts) < 2:
            rejected.append((path, "not inside a class folder"))
        elif params.labels == "folder":
            labelled.append((path, parts[0]))
        elif (match := pattern.search(parts[-1])) and match.group("label"):
            labelled.append((path, match.group("label")))
        else:
            rejected.append((path, f"file name does not match data.pattern {params.pattern!r}"))
    return labelled, rejected


def _walk(root: Path) -> Iterator[tuple[str, str | None]]:
    """Yield (relative POSIX path, problem or None) for every non-hidden entry, sorted; a
    folder that cannot be listed is one entry with its reason."""
    real_root = os.path.realpath(root)
    unreadable: list[OSError] = []  # what os.walk could not list (it would skip it silently)
    for folder, subfolders, files in os.walk(root, onerror=unreadable.append):
        yield from _unreadable_folders(root, unreadable)
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in list(subfolders):
            if os.path.islink(os.path.join(folder, name)):
                subfolders.remove(name)
                yield _relative(root, folder, name), "symbolic link to a folder (not followed)"
        for name in sorted(files):
            if not name.startswith(".") and name.lower() not in OS_FILES:
                full = os.path.join(folder, name)
                yield _relative(root, folder, name), _file_problem(full, real_root)
    yield from _unreadable_folders(root, unreadable)


def _unreadable_folders(root: Path, errors: list[OSError]) -> Iterator[tuple[str, str]]:
    while errors:
        error = errors.pop()
        path = Path(error.filename).relative_to(root).as_posix()
        yield path, f"cannot read folder ({error.strerror or error})"


def _relative(root: Path, folder: str, name: str) -> str:
    return Path(folder, name).relative_to(root).as_posix()


def _file_problem(full: str, real_root: str) -> str | None:
    real = os.path.realpath(full)
    if os.path.commonpath([real, real_root]) != real_root:
        return "symbolic link pointing outside the source folder"
    if not os.path.isfile(real):
        return "not a regular file" if os.path.exists(real) else "broken symbolic link"
    return None


def _labels_from_csv(root: Path, manifest: str, given: dict[str, str] | None) -> tuple[list, list]:
    """Labels from the CSV; with `given`, also its `split` column (recorded in `given`)."""
    frame = read_csv(root / manifest, ["path", "label", *(["split"] if given is not None else [])])
    real_root = os.path.realpath(root)
    labelled, rejected, seen = [], [], set()
    splits = frame["split"].str.strip() if given is not None else [""] * len(frame)
    for raw_path, label, split in zip(frame["path"], frame["label"], splits, strict=True):
        path = os.path.normpath(raw_path.replace("\\", "/")) if raw_path else ""
        if not path or os.path.isabs(path) or path.split(os.sep)[0] == "..":
            rejected.append((raw_path, "path leaves the source folder (must be relative)"))
        elif path in seen:
            rejected.append((path, f"listed more than once in {manifest}"))
        elif not os.path.lexists(root / path):
            rejected.append((path, "file not found"))
        elif problem := _file_problem(str(root / path), real_root):
            rejected.append((path, problem))
        elif not label.strip():
            rejected.append((path, "empty label"))
        elif given is not None and split not in SPLITS:
            rejected.append((path, f"split {split!r} is not train, val or test"))
        else:
            labelled.append((path, label.strip()))
            if given is not None:
                given[path] = split
        seen.add(path)
    return labelled, rejected


def _check_decodes(
    root: Path, labelled: list[tuple[str, str]], workers: int
) -> list[tuple[str, str, tuple[int, int, str, str, str] | str]]:
    """Read and decode every file once; return (path, label, facts from `image_facts` or
    the rejection reason)."""
    paths = [str(root / path) for path, _ in labelled]
    sizes: list[tuple[int, int, str, str, str] | str] = []
    for chunk in ordered_map(
        image_facts,
        paths,
        chunk_size=32,
        workers=workers,
        max_in_flight=4 * workers,
        desc="index",
        unit="img",
    ):
        sizes.extend(chunk)
    return [(path, label, size) for (path, label), size in zip(labelled, sizes, strict=True)]
