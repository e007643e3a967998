"""Packs for tests: one written from arrays, a tiny learnable one, and an image folder packed
by the pipeline's own index, split and pack code."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from imgclf.data.hdf5io import PackWriter
from imgclf.data.indexing import build_index
from imgclf.data.inputs import PackInfo
from imgclf.data.packing import pack_split
from imgclf.data.splitting import split_manifest
from imgclf.models.modelcard import ModelCard
from support.params import make_params

PACKED_SIZE = (20, 24)  # (h, w) of `pack_folder`'s images


def write_pack(
    path: Path,
    images: np.ndarray,
    labels: Sequence[int],
    label_names: Sequence[str],
    chunk_rows: int = 4,
    paths: Sequence[str] | None = None,
) -> Path:
    """A pack holding `images` (uint8, N×H×W×3), named `0.png`, `1.png`… unless `paths`."""
    paths = list(paths) if paths is not None else [f"{i}.png" for i in range(len(images))]
    with PackWriter(path, len(images), images.shape[1:], list(label_names), chunk_rows) as writer:
        writer.write(images, np.asarray(labels, np.int64), paths)
    return path


def random_images(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), np.uint8)


def tiny_pack(path: Path) -> PackInfo:
    """40 images of 6x6 whose label is whether they are bright."""
    images = random_images(40, 6, 6)
    labels = (images.mean(axis=(1, 2, 3)) > 127).astype(np.int64)
    write_pack(path, images, labels, ["dark", "bright"], chunk_rows=8)
    return PackInfo.read(path)


def tiny_pack_card(model: str, input_size: tuple[int, int]) -> ModelCard:
    """The model card of a Keras model trained on `tiny_pack`."""
    labels = ("dark", "bright")
    return ModelCard(
        kind="keras", model=model, label_names=labels, image_size=(6, 6), input_size=input_size
    )


def folder_splits(folder: Path) -> pd.DataFrame:
    """The folder indexed and split (25 % val, 25 % test) by the pipeline's code."""
    params = make_params(data={"source": str(folder)}, split={"val": 0.25, "test": 0.25})
    return split_manifest(build_index(params.data).manifest, params.split, seed=0)


def pack_folder(
    folder: Path,
    out: Path,
    split: str = "train",
    workers: int = 1,
    batch_size: int = 5,
    seed: int = 0,
) -> int:
    """Pack one split of the folder at `PACKED_SIZE`; returns the number of images."""
    params = make_params(pack={"batch_size": batch_size}).pack
    splits = folder_splits(folder)
    return pack_split(splits, split, folder, out, PACKED_SIZE, params, seed, workers)
