"""HDF5 files of the pipeline, with one set of key names: image packs and predictions.

A pack holds `images` uint8 (N, H, W, 3) RGB chunked per batch of images, `labels` int64
(N,), `label_names` and `paths` (UTF-8 strings). Files carry no timestamps, so the same
inputs give the same bytes, and are written under a temporary name, then renamed.
"""

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from imgclf.core.errors import DiskFullError, UserError
from imgclf.core.fileio import atomic_output, out_of_space
from imgclf.core.integrity import check_intact, not_found

IMAGES = "images"
FEATURES = "features"
LABELS = "labels"
LABEL_NAMES = "label_names"
PATHS = "paths"
_TEXT = h5py.string_dtype("utf-8")


class PackWriter:
    """Write a pack of known size row by row; the file appears only once every row is in.

    Rows are `images` (uint8) by default; feature files use `key=FEATURES, dtype=float32`.
    Use as a context manager; `write` takes consecutive batches.
    """

    def __init__(
        self,
        path: Path | str,
        count: int,
        image_shape: tuple[int, ...],
        label_names: Sequence[str],
        chunk_rows: int,
        attrs: dict[str, Any] | None = None,
        *,
        key: str = IMAGES,
        dtype: type = np.uint8,
    ) -> None:
        self.path, self.count, self.written = Path(path), count, 0
        self._out_of_space: int | None = None  # the errno of a write that found no space
        self._stack = contextlib.ExitStack()
        try:
            self._create(label_names, image_shape, chunk_rows, attrs or {}, key, dtype)
        except BaseException as error:  # discard the temporary file, keep the error
            self._stack.__exit__(type(error), error, error.__traceback__)
            raise

    def _create(
        self,
        label_names: Sequence[str],
        row_shape: tuple[int, ...],
        chunk_rows: int,
        attrs: dict[str, Any],
        key: str,
        dtype: type,
    ) -> None:
        count = self.count
        temporary = self._stack.enter_context(atomic_output(self.path))
        self._file = self._stack.enter_context(h5py.File(temporary, "w", track_order=False))
        chunks = (max(1, min(chunk_rows, count)), *row_shape)
        self._rows = self._file.create_dataset(
            key, (count, *row_shape), dtype, chunks=chunks, track_times=False
        )
        self._labels = self._file.create_dataset(LABELS, (count,), np.int64, track_times=False)
        self._paths = self._file.create_dataset(PATHS, (count,), _TEXT, track_times=False)
        self._file.create_dataset(
            LABEL_NAMES, data=list(label_names), dtype=_TEXT, track_times=False
        )
        for key, value in sorted(attrs.items()):
            self._file.attrs[key] = value

    def write(self, rows: np.ndarray, labels: Sequence[int], paths: Sequence[str]) -> None:
        """Append a batch of rows (images or features) with their labels and source paths."""
        end = self.written + len(rows)
        if end > self.count or not len(rows) == len(labels) == len(paths):
            raise ValueError(
                f"batch of {len(rows)} does not fit {self.path} at row "
                f"{self.written} of {self.count}"
            )
        try:
            self._rows[self.written : end] = rows
            self._labels[self.written : end] = np.asarray(labels, dtype=np.int64)
            self._paths[self.written : end] = list(paths)
            # Each batch reaches the disk now: a full disk fails here, in a write that
            # `__exit__` recognises, and not later in the close.
            self._file.flush()
        except (OSError, RuntimeError) as error:
            self._out_of_space = out_of_space(error)
            raise
        self.written = end

    def __enter__(self) -> "PackWriter":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._out_of_space is not None:
            # HDF5 cannot close a file whose flush failed (it raises, or crashes later): the
            # temporary file is deleted whatever the close says, and the process must stop.
            with contextlib.suppress(Exception):
                self._stack.__exit__(kind, error, traceback)
            raise DiskFullError(self.path, self._out_of_space) from None
        if kind is None and self.written != self.count:
            error = ValueError(f"{self.path}: only {self.written} of {self.count} rows written")
            self._stack.__exit__(type(error), error, None)
            raise error
        self._stack.__exit__(kind, error, traceback)


class PackReader:
    """Read a pack written by `PackWriter`; images stay on disk until sliced."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        check_intact(self.path)
        try:
            self._file = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise not_found(self.path) from None
        except OSError as error:
            raise UserError(f"{self.path}: not a readable HDF5 file ({error})") from None
        missing = [key for key in (IMAGES, LABELS, LABEL_NAMES, PATHS) if key not in self._file]
        if missing:
            self.close()
            raise UserError(f"{self.path}: not an imgclf pack (missing {', '.join(missing)})")
        self.images: h5py.Dataset = self._file[IMAGES]
        self.labels: np.ndarray = self._file[LABELS][:]
        self.label_names: list[str] = list(self._file[LABEL_NAMES].asstr()[:])
        self.attrs = dict(self._file.attrs)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def paths(self) -> list[str]:
        return list(self._file[PATHS].asstr()[:])

    @property
    def chunk_rows(self) -> int:
        return self.images.chunks[0] if self.images.chunks else len(self)

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (images, labels) one stored chunk at a time: memory bounded by a chunk."""
        for start in range(0, len(self), self.chunk_rows):
            end = start + self.chunk_rows
            yield self.images[start:end], self.labels[start:end]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "PackReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


PROBABILITIES = "probabilities"


@dataclass(frozen=True)
class SplitPredictions:
    """Class probabilities of one split, with the true labels and source paths."""

    probabilities: np.ndarray  # float32 (N, C)
    labels: np.ndarray  # int64 (N,)
    paths: list[str]


def save_predictions(
    path: Path | str,
    splits: dict[str, SplitPredictions],
    label_names: Sequence[str],
    attrs: dict[str, Any] | None = None,
) -> None:
    """Write one group per split (`probabilities`, `labels`, `paths`) and `label_names`."""
    with atomic_output(path) as temporary, h5py.File(temporary, "w") as handle:
        handle.create_dataset(LABEL_NAMES, data=list(label_names), dtype=_TEXT, track_times=False)
        for name, split in sorted(splits.items()):
            group = handle.create_group(name, track_order=False)
            group.create_dataset(
                PROBABILITIES, data=split.probabilities.astype(np.float32), track_times=False
            )
            group.create_dataset(LABELS, data=split.labels.astype(np.int64), track_times=False)
            group.create_dataset(PATHS, data=split.paths, dtype=_TEXT, track_times=False)
        for key, value in sorted((attrs or {}).items()):
            handle.attrs[key] = value


def load_predictions(path: Path | str) -> tuple[dict[str, SplitPredictions], list[str]]:
    """Read a predictions file: ({split: SplitPredictions}, label_names)."""
    check_intact(path)
    try:
        with h5py.File(path, "r") as handle:
            names = list(handle[LABEL_NAMES].asstr()[:])
            splits = {
                name: SplitPredictions(
                    group[PROBABILITIES][:], group[LABELS][:], list(group[PATHS].asstr()[:])
                )
                for name, group in handle.items()
                if isinstance(group, h5py.Group)
            }
    except FileNotFoundError:
        raise not_found(path) from None
    except (OSError, KeyError) as error:
        raise UserError(f"{path}: not an imgclf predictions file ({error})") from None
    return splits, names


def prediction_attrs(path: Path | str) -> dict[str, Any]:
    """The attributes `save_predictions` stored (which model, how many crops, ...)."""
    try:
        with h5py.File(path, "r") as handle:
            return {
                key: value.item() if isinstance(value, np.generic) else value
                for key, value in handle.attrs.items()
            }
    except FileNotFoundError:
        raise not_found(path) from None
    except OSError as error:
        raise UserError(f"{path}: not an imgclf predictions file ({error})") from None


@dataclass(frozen=True)
class Features:
    """A features file loaded whole: vectors, labels, class names and source paths."""

    features: np.ndarray  # float32 (N, D)
    labels: np.ndarray  # int64 (N,)
    label_names: list[str]
    paths: list[str]
    attrs: dict[str, Any]


def load_features(path: Path | str) -> Features:
    """Read a features file written with `PackWriter(..., key=FEATURES)`."""
    check_intact(path)
    try:
        with h5py.File(path, "r") as handle:
            return Features(
                handle[FEATURES][:],
                handle[LABELS][:],
                list(handle[LABEL_NAMES].asstr()[:]),
                list(handle[PATHS].asstr()[:]),
                dict(handle.attrs),
            )
    except FileNotFoundError:
        raise not_found(path) from None
    except (OSError, KeyError) as error:
        raise UserError(f"{path}: not an imgclf features file ({error})") from None
