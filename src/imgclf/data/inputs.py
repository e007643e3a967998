"""tf.data input pipelines that stream HDF5 packs.

Training: chunks are read in a seeded order that changes every epoch, rows are shuffled in a
bounded buffer, every image gets its own random patch crop and flip (book ch. 10), a batch
goes through the Keras augmentation layers, and batches are prefetched. Evaluation: rows in
stored order, centre crop, no augmentation. Images stay raw RGB floats in [0, 255]: mean
subtraction and scaling live inside the models, so a saved model takes plain pixels.

Memory is bounded by a few chunks unless `cache` is set, which keeps the decoded uint8 pack
in memory after the first epoch (cache sits before any random step, so later epochs still
get fresh crops and augmentations).
"""

from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf

from imgclf.data.hdf5io import IMAGES, LABELS, PackReader

AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class PackInfo:
    """What a pipeline needs to know about a pack without holding it open."""

    path: Path
    count: int
    image_shape: tuple[int, int, int]
    chunk_rows: int
    label_names: tuple[str, ...]
    interpolation: str  # how the pack was resized; new images must be resized the same way

    @classmethod
    def read(cls, path: Path | str) -> "PackInfo":
        with PackReader(path) as reader:
            return cls(
                Path(path),
                len(reader),
                tuple(reader.images.shape[1:]),
                reader.chunk_rows,
                tuple(reader.label_names),
                str(reader.attrs.get("interpolation", "area")),
            )

    @property
    def chunks(self) -> int:
        return -(-self.count // self.chunk_rows)


class _ChunkReader:
    """Reads one stored chunk by index; the file is opened once, on first use."""

    def __init__(self, info: PackInfo) -> None:
        self.info = info
        self._file: h5py.File | None = None

    def __call__(self, index: np.int64) -> tuple[np.ndarray, np.ndarray]:
        if self._file is None:
            self._file = h5py.File(self.info.path, "r")
        start = int(index) * self.info.chunk_rows
        end = start + self.info.chunk_rows
        return self._file[IMAGES][start:end], self._file[LABELS][start:end]


def _read_chunks(info: PackInfo, chunk_order: tf.data.Dataset) -> tf.data.Dataset:
    """(image uint8, label int64) rows of the chunks named by `chunk_order`."""
    reader = _ChunkReader(info)

    def read(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images, labels = tf.numpy_function(reader, [index], (tf.uint8, tf.int64), stateful=False)
        images.set_shape((None, *info.image_shape))
        labels.set_shape((None,))
        return images, labels

    return chunk_order.map(read, num_parallel_calls=AUTOTUNE).unbatch()


def centre_crop(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """The central `size` (h, w) patch of one image or a batch."""
    height, width = image.shape[-3], image.shape[-2]
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    return image[..., top : top + size[0], left : left + size[1], :]


def shuffle_rows(info: PackInfo, shuffle_mb: int) -> int:
    """Rows of the streaming shuffle buffer: about `shuffle_mb` of decoded images, at least
    one chunk. Sized in bytes, not rows: 8 chunks of 224-px images held 1.2 GB (bench/)."""
    row_bytes = int(np.prod(info.image_shape))
    return min(info.count, max(info.chunk_rows, shuffle_mb * 2**20 // row_bytes))


def training_dataset(
    info: PackInfo,
    *,
    batch_size: int,
    seed: int,
    crop: tuple[int, int],
    augmentation: keras.Sequential | None = None,
    cache: bool = False,
    shuffle_mb: int = 64,
) -> tf.data.Dataset:
    """Endless training batches (float32 images (B, *crop, 3), int64 labels); one epoch is
    ceil(count / batch_size) batches."""
    if cache:
        rows = _read_chunks(info, tf.data.Dataset.range(info.chunks)).cache()
        rows = rows.shuffle(info.count, seed=seed, reshuffle_each_iteration=True)
    else:
        order = tf.data.Dataset.range(info.chunks).shuffle(
            info.chunks, seed=seed, reshuffle_each_iteration=True
        )
        buffer = shuffle_rows(info, shuffle_mb)
        rows = _read_chunks(info, order).shuffle(
            buffer, seed=seed + 1, reshuffle_each_iteration=True
        )
    # One stateless seed pair per image, different every epoch, the same on every run.
    seeds = tf.data.Dataset.random(seed=seed + 2, rerandomize_each_iteration=True).batch(2)
    rows = tf.data.Dataset.zip(rows, seeds).map(
        lambda row, pair: (_random_patch(row[0], crop, pair), row[1]), num_parallel_calls=AUTOTUNE
    )
    # Repeat before batching: Keras keeps one iterator across epochs when given
    # steps_per_epoch, and every pass over the rows is reshuffled.
    batches = rows.repeat().batch(batch_size)
    if augmentation is not None:
        batches = batches.map(
            lambda images, labels: (augmentation(images, training=True), labels),
            num_parallel_calls=AUTOTUNE,
        )
    return batches.prefetch(AUTOTUNE)


def _random_patch(image: tf.Tensor, crop: tuple[int, int], pair: tf.Tensor) -> tf.Tensor:
    """A random `crop` patch, randomly mirrored (book ch. 10 patches + horizontal flips)."""
    pair = tf.cast(pair, tf.int32)
    patch = tf.image.stateless_random_crop(image, (*crop, image.shape[-1]), seed=pair)
    patch = tf.image.stateless_random_flip_left_right(patch, seed=pair[::-1])
    return tf.cast(patch, tf.float32)


def evaluation_dataset(
    info: PackInfo, *, batch_size: int, crop: tuple[int, int] | None = None
) -> tf.data.Dataset:
    """Batches in stored order, centre-cropped to `crop`: (float32 images, int64 labels)."""
    rows = _read_chunks(info, tf.data.Dataset.range(info.chunks))
    size = crop or info.image_shape[:2]
    rows = rows.map(
        lambda image, label: (tf.cast(centre_crop(image, size), tf.float32), label),
        num_parallel_calls=AUTOTUNE,
    )
    # Declared so Keras knows when an epoch ends (numpy_function hides the length).
    batches = rows.batch(batch_size).apply(
        tf.data.experimental.assert_cardinality(-(-info.count // batch_size))
    )
    return batches.prefetch(AUTOTUNE)


def build_augmentation(
    *, rotation: float, shift: float, shear: float, zoom: float, seed: int
) -> keras.Sequential | None:
    """Keras preprocessing layers for the book's ImageDataGenerator settings.

    `rotation` and `shear` are in degrees (as modern Keras reads the book's `shear_range`),
    `shift` and `zoom` are fractions; 0 turns a transform off. Flips happen with the crop.
    """
    layers: list[keras.layers.Layer] = []
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation / 360, fill_mode="nearest", seed=seed))
    if shift:
        layers.append(
            keras.layers.RandomTranslation(shift, shift, fill_mode="nearest", seed=seed + 1)
        )
    if shear:
        # ImageDataGenerator shears along x only, by an angle; RandomShear takes tan(angle).
        layers.append(
            keras.layers.RandomShear(
                x_factor=float(np.tan(np.radians(shear))), fill_mode="nearest", seed=seed + 2
            )
        )
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="nearest", seed=seed + 3))
    return keras.Sequential(layers, name="augmentation") if layers else None
