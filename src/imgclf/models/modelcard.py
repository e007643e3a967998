"""The model card: what a trained model file says about itself (class names, image size,
backbone, …), a typed record stored inside the file as an `imgclf.json` entry of its zip
(`.keras` and `.skops` files are both zips), so it travels with the model and cannot drift
from it. Every stage that trains writes one; every reader gets it checked, in one line.

Adding that entry also makes the file reproducible: the same model gives the same bytes, so
DVC sees an unchanged model after a retrain that changed nothing and skips what follows.
"""

import dataclasses
import json
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from imgclf.core.config import Interpolation
from imgclf.core.errors import UserError
from imgclf.core.integrity import not_found

ENTRY = "imgclf.json"
_NO_TIME = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date
_KERAS_METADATA = "metadata.json"
# The document of each format that identifies objects by id(), and the key it uses.
_OBJECT_ID_KEYS = {"schema.json": "__id__", "config.json": "shared_object_id"}
_SKOPS_ARRAY = re.compile(r"(\d+)\.npy")
POOLINGS = ("avg", "max", "flatten")
INTERPOLATIONS = get_args(Interpolation)

Entries = dict[str, tuple[bytes, int]]  # name -> (data, compression)


@dataclass(frozen=True, kw_only=True)
class ModelCard:
    """A model file's card. `kind`: "backbone" (a feature extractor, no classes), "keras" (a
    cnn seed or finetune classifier) or "logreg" (a logistic regression on a backbone's
    pooled features). Fields a kind does not use stay None and are not stored."""

    kind: str
    image_size: tuple[int, int]  # the packed (h, w) the model was trained on
    arch: str | None = None  # the architecture (cnn.arch, or the backbone's)
    weights: str | None = None  # the backbone's initial weights (backbone.weights)
    model: str | None = None  # the catalogue name: cnn/seed0, finetune, logreg
    label_names: tuple[str, ...] | None = None
    input_size: tuple[int, int] | None = None  # a Keras classifier's centre crop (h, w)
    interpolation: Interpolation | None = None  # pack.interpolation of its training pack
    backbone: str | None = None  # a logreg's backbone file, relative to the model's folder
    pooling: str | None = None  # a logreg's feature pooling

    def __post_init__(self) -> None:
        for name in ("image_size", "input_size", "label_names"):
            if (value := getattr(self, name)) is not None:
                object.__setattr__(self, name, tuple(value))

    def to_json(self) -> dict[str, Any]:
        """The stored form: the fields in use, tuples as lists."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            if (value := getattr(self, field.name)) is not None
        }

    def write(self, model_path: Path | str) -> None:
        """Store the card in a freshly saved model file (see `write_entry`)."""
        write_entry(model_path, self.to_json())

    @classmethod
    def read(cls, model_path: Path | str) -> "ModelCard":
        """The card a pipeline stage stored in the model file, checked."""
        return cls.from_json(read_entry(model_path), model_path)

    @classmethod
    def from_json(cls, stored: Any, source: Path | str) -> "ModelCard":
        """A stored card, or one line naming `source` and what is wrong with it."""
        if not isinstance(stored, dict) or stored.get("kind") not in REQUIRED:
            kind = stored.get("kind") if isinstance(stored, dict) else None
            raise UserError(f"{source}: its model card has kind {kind!r}; {_RERUN}")
        known = {field.name for field in dataclasses.fields(cls)}
        if unknown := sorted(set(stored) - known):
            raise UserError(f"{source}: its model card has unknown keys {unknown}; {_RERUN}")
        if missing := [key for key in REQUIRED[stored["kind"]] if key not in stored]:
            raise UserError(f"{source}: its model card has no {missing[0]!r}; {_RERUN}")
        for key, check, expected in _CHECKS:
            if key in stored and not check(stored[key]):
                raise UserError(
                    f"{source}: its model card says {key} = {stored[key]!r}; expected {expected}"
                )
        return cls(**stored)

    def backbone_path(self, model_path: Path | str) -> Path:
        """A logreg's backbone file (stored relative to the model's folder)."""
        if self.backbone is None:
            raise UserError(f"{model_path}: a {self.kind} model has no backbone")
        return Path(os.path.normpath(Path(model_path).parent / self.backbone))


_RERUN = "rerun the stage that wrote it (dvc repro)"
# What each kind's readers need; the other fields are descriptive.
REQUIRED = {
    "backbone": ("arch", "weights", "image_size"),
    "keras": ("label_names", "image_size", "input_size"),
    "logreg": ("label_names", "image_size", "backbone", "pooling"),
}


def _size(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(type(side) is int and side > 0 for side in value)
    )


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


_CHECKS = (
    ("image_size", _size, "[height, width]"),
    ("input_size", _size, "[height, width]"),
    ("label_names", lambda v: isinstance(v, list) and all(map(_text, v)), "a list of names"),
    ("interpolation", lambda v: v in INTERPOLATIONS, " or ".join(INTERPOLATIONS)),
    ("pooling", lambda v: v in POOLINGS, " or ".join(POOLINGS)),
    *((key, _text, "a name") for key in ("arch", "weights", "model", "backbone")),
)


def write_entry(model_path: Path | str, stored: Mapping[str, Any]) -> None:
    """Add the card's entry to a freshly saved model file and drop what varies between
    saves of the same model: entry times, Keras's `date_saved`, `id()`-based object ids.
    (Tests plant malformed cards with it; stages write a `ModelCard`.)"""
    path = Path(model_path)
    with zipfile.ZipFile(path) as archive:
        if ENTRY in archive.namelist():
            raise UserError(f"{path}: already has {ENTRY}; save the model afresh")
        entries = {
            info.filename: (archive.read(info), info.compress_type) for info in archive.infolist()
        }
    entries = _renumber_object_ids(_without_save_date(entries))
    entries[ENTRY] = (
        json.dumps(dict(stored), indent=2, sort_keys=True).encode(),
        zipfile.ZIP_DEFLATED,
    )
    with zipfile.ZipFile(path, "w") as archive:
        for name, (data, compression) in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_NO_TIME), data, compression)


def read_entry(model_path: Path | str) -> Any:
    """The card's entry as stored, unchecked."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            return json.loads(archive.read(ENTRY))
    except FileNotFoundError:
        raise not_found(model_path) from None
    except (zipfile.BadZipFile, KeyError) as error:
        raise UserError(
            f"{model_path}: not a model written by the imgclf pipeline ({error})"
        ) from None


def check_classes(model_path: Path | str, names: Sequence[str], data_path: Path | str) -> None:
    """The model was trained on exactly these class names, in this order (a count is not
    enough: the same classes in another order would silently swap predictions)."""
    trained = ModelCard.read(model_path).label_names
    if trained != tuple(names):
        raise UserError(
            f"{model_path}: trained on the classes {list(trained or ())}, but {data_path} has "
            f"{list(names)}; rerun the stages that made them (dvc repro)"
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
