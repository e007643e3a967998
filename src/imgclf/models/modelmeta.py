"""What a model needs to be used on new images (class names, image size, backbone, …),
stored inside the model file itself as an `imgclf.json` entry of its zip (`.keras` and
`.skops` files are both zips), so it travels with the model and cannot drift from it.

Adding that entry also makes the file reproducible: the same model gives the same bytes, so
DVC sees an unchanged model after a retrain that changed nothing and skips what follows.
"""

import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imgclf.core.errors import UserError

ENTRY = "imgclf.json"
_NO_TIME = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date
_KERAS_METADATA = "metadata.json"
# The document of each format that identifies objects by id(), and the key it uses.
_OBJECT_ID_KEYS = {"schema.json": "__id__", "config.json": "shared_object_id"}
_SKOPS_ARRAY = re.compile(r"(\d+)\.npy")

Entries = dict[str, tuple[bytes, int]]  # name -> (data, compression)


def write_metadata(model_path: Path | str, metadata: dict[str, Any]) -> None:
    """Add the metadata entry to a freshly saved model file and drop what varies between
    saves of the same model: entry times, Keras's `date_saved`, `id()`-based object ids."""
    path = Path(model_path)
    with zipfile.ZipFile(path) as archive:
        if ENTRY in archive.namelist():
            raise UserError(f"{path}: already has {ENTRY}; save the model afresh")
        entries = {
            info.filename: (archive.read(info), info.compress_type) for info in archive.infolist()
        }
    entries = _renumber_object_ids(_without_save_date(entries))
    entries[ENTRY] = (
        json.dumps(metadata, indent=2, sort_keys=True).encode(),
        zipfile.ZIP_DEFLATED,
    )
    with zipfile.ZipFile(path, "w") as archive:
        for name, (data, compression) in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_NO_TIME), data, compression)


def read_metadata(model_path: Path | str) -> dict[str, Any]:
    """The metadata a pipeline stage stored with the model."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            return json.loads(archive.read(ENTRY))
    except FileNotFoundError:
        raise UserError(f"{model_path}: file not found") from None
    except (zipfile.BadZipFile, KeyError) as error:
        raise UserError(
            f"{model_path}: not a model written by the imgclf pipeline ({error})"
        ) from None


def check_classes(model_path: Path | str, names: Sequence[str], data_path: Path | str) -> None:
    """The model was trained on exactly these class names, in this order (a count is not
    enough: the same classes in another order would silently swap predictions)."""
    trained = read_metadata(model_path).get("label_names")
    if trained != list(names):
        raise UserError(
            f"{model_path}: trained on the classes {trained}, but {data_path} has {list(names)}; "
            "rerun the stages that made them (dvc repro)"
        )


def _without_save_date(entries: Entries) -> Entries:
    """Keras records when it saved; nothing reads it back."""
    if _KERAS_METADATA not in entries:
        return entries
    data, compression = entries[_KERAS_METADATA]
    keras_metadata = json.loads(data)
    keras_metadata.pop("date_saved", None)
    return {**entries, _KERAS_METADATA: (json.dumps(keras_metadata).encode(), compression)}


def _renumber_object_ids(entries: Entries) -> Entries:
    """skops (`__id__`, array file names) and Keras (`shared_object_id`) identify objects by
    their `id()` in the saving process; number them in order of appearance instead (the same
    one-to-one mapping, so shared objects still load as shared)."""
    for document, key in _OBJECT_ID_KEYS.items():
        if document not in entries:
            continue
        data, compression = entries[document]
        tree = json.loads(data)
        numbers = _renumber(tree, key)
        renamed = {f"{identity}.npy": f"{number}.npy" for identity, number in numbers.items()}
        entries = {renamed.get(name, name): value for name, value in entries.items()}
        entries[document] = (json.dumps(tree).encode(), compression)
    return entries


def _renumber(tree: Any, key: str) -> dict[int, int]:
    """Replace every `key` id in `tree` (in place), and every skops `file` named after one,
    by 1, 2, … (not 0: skops skips memoising a falsy id); return old id -> new number."""
    numbers: dict[int, int] = {}

    def number(identity: int) -> int:
        return numbers.setdefault(identity, len(numbers) + 1)

    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(identity := node.get(key), int):
                node[key] = number(identity)
            if isinstance(file := node.get("file"), str) and (
                match := _SKOPS_ARRAY.fullmatch(file)
            ):
                node["file"] = f"{number(int(match[1]))}.npy"
            stack.extend(reversed(node.values()))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return numbers
