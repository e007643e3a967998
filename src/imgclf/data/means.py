"""Per-channel pixel means of a pack (means.json), used for mean subtraction (book ch. 9)."""

from pathlib import Path

import numpy as np

from imgclf.core.errors import UserError
from imgclf.core.fileio import read_json, write_json
from imgclf.data.hdf5io import PackReader

CHANNELS = ("R", "G", "B")


def channel_means(pack: Path | str) -> dict[str, float]:
    """Mean R, G, B over every pixel of a pack, read one chunk at a time."""
    totals = np.zeros(3, dtype=np.float64)
    pixels = 0
    with PackReader(pack) as reader:
        for images, _ in reader.iter_chunks():
            totals += images.sum(axis=(0, 1, 2), dtype=np.float64)
            pixels += images.shape[0] * images.shape[1] * images.shape[2]
    if pixels == 0:
        raise UserError(f"{pack}: empty pack, cannot compute channel means")
    return dict(zip(CHANNELS, (float(value) for value in totals / pixels), strict=True))


def save_means(path: Path | str, means: dict[str, float]) -> None:
    write_json(path, means)


def load_means(path: Path | str) -> np.ndarray:
    """The (R, G, B) means of a means.json as a float32 array, checked for all three keys."""
    means = read_json(path)
    missing = [channel for channel in CHANNELS if not isinstance(means.get(channel), float)]
    if missing:
        raise UserError(f"{path}: missing or non-numeric mean(s) {', '.join(missing)}")
    return np.asarray([means[channel] for channel in CHANNELS], dtype=np.float32)
