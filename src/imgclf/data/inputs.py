"""tf.data input pipelines that stream HDF5 packs.

Training: rows come in an order drawn afresh for every epoch, every image gets its own random
patch crop and flip (book ch. 10), a batch goes through the Keras augmentation layers, and
batches are prefetched; all of it drawn from (seed, epoch), so a resumed run repeats an epoch
exactly. Evaluation: rows in stored order, centre crop, no augmentation. Images stay raw RGB
floats in [0, 255]: mean subtraction and scaling live inside the models, so a saved model
takes plain pixels.

Memory is bounded by a shuffle window of a few chunks unless `cache` is set, which keeps the
decoded uint8 pack in memory once read (every epoch still gets its own order, crops and
augmentations).
"""

import threading
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


class _Rows:
    """Reads a pack's rows for tf.data: whole stored chunks from disk, or, with `cache`, any
    rows from an in-memory copy loaded on first use. The file is opened once."""

    def __init__(self, info: PackInfo, cache: bool = False) -> None:
        self.info, self.cache = info, cache
        self._file: h5py.File | None = None
        self._memory: tuple[np.ndarray, np.ndarray] | None = None
        self._loading = threading.Lock()  # tf.data calls `rows` from several threads

    def chunks(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the stored chunks `indices`, in that order."""
        if self._file is None:
            self._file = h5py.File(self.info.path, "r")
        size = self.info.chunk_rows
        slices = [slice(int(index) * size, (int(index) + 1) * size) for index in indices]
        images, labels = self._file[IMAGES], self._file[LABELS]
        return (
            np.concatenate([images[part] for part in slices]),
            np.concatenate([labels[part] for part in slices]),
        )

    def rows(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows `indices` in that order, from memory (`cache` only)."""
        with self._loading:
            if self._memory is None:
                self._memory = self.chunks(np.arange(self.info.chunks))
        images, labels = self._memory
        return images[indices], labels[indices]

    def read(self, method: str, indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """`chunks` or `rows` as a TensorFlow op, with static shapes."""
        images, labels = tf.numpy_function(
            getattr(self, method), [indices], (tf.uint8, tf.int64), stateful=False
        )
        images.set_shape((None, *self.info.image_shape))
        labels.set_shape((None,))
        return images, labels


def _read_chunks(info: PackInfo) -> tf.data.Dataset:
    """(image uint8, label int64) rows of the pack in stored order."""
    reader = _Rows(info)
    chunks = tf.data.Dataset.range(info.chunks).batch(1)
    return chunks.map(lambda index: reader.read("chunks", index), num_parallel_calls=AUTOTUNE)


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
    first_epoch: int = 0,
) -> tf.data.Dataset:
    """Training batches (float32 images (B, *crop, 3), int64 labels) from `first_epoch` on,
    without end; each epoch is one pass: ceil(count / batch_size) batches, the last partial.

    Every random choice of an epoch (row order, patches, flips, augmentation) is drawn with
    stateless ops from (seed, epoch) and the position in the epoch, never from state carried
    over from earlier epochs: a run resumed at epoch k sees exactly the batches it would
    have seen. Rows are shuffled over the whole pack when cached; streamed, chunks come in a
    random order and rows are shuffled within windows of about `shuffle_mb`.
    """
    reader = _Rows(info, cache)
    window = max(1, shuffle_rows(info, shuffle_mb) // info.chunk_rows)  # chunks

    def cached_rows(epoch_seed: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(info.count, dtype=tf.int64), seed=_fold(epoch_seed, 0, 0)
        )
        groups = tf.data.Dataset.from_tensor_slices(order).batch(info.chunk_rows)
        return groups.map(lambda rows: reader.read("rows", rows), num_parallel_calls=AUTOTUNE)

    def streamed_rows(epoch_seed: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(info.chunks, dtype=tf.int64), seed=_fold(epoch_seed, 0, 0)
        )

        def mixed(index: tf.Tensor, chunks: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            images, labels = reader.read("chunks", chunks)
            mix = tf.random.experimental.stateless_shuffle(
                tf.range(tf.shape(labels)[0]), seed=_fold(epoch_seed, 1, index)
            )
            return tf.gather(images, mix), tf.gather(labels, mix)

        windows = tf.data.Dataset.from_tensor_slices(order).batch(window).enumerate()
        return windows.map(mixed, num_parallel_calls=AUTOTUNE)

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
        groups = cached_rows(epoch_seed) if cache else streamed_rows(epoch_seed)
        # Each image's patch and flip: a stateless seed from (epoch seed, its position).
        rows = tf.data.Dataset.zip(groups.unbatch(), tf.data.Dataset.range(info.count))
        patches = rows.map(
            lambda row, index: (_random_patch(row[0], crop, _fold(epoch_seed, 2, index)), row[1]),
            num_parallel_calls=AUTOTUNE,
        )
        batches = patches.batch(batch_size)
        if augmentation is None:
            return batches
        return batches.enumerate().map(
            lambda index, batch: (
                _augment(augmentation, batch[0], _fold(epoch_seed, 3, index)),
                batch[1],
            ),
            num_parallel_calls=AUTOTUNE,
        )

    epochs = tf.data.Dataset.range(first_epoch, 2**62)
    return epochs.flat_map(epoch_batches).prefetch(AUTOTUNE)


def _fold(seed: tf.Tensor, stream: int, index: tf.Tensor) -> tf.Tensor:
    """A stateless seed pair for item `index` of random stream `stream` of `seed`."""
    stream_seed = tf.random.experimental.stateless_fold_in(seed, stream)
    return tf.random.experimental.stateless_fold_in(stream_seed, index)


def _random_patch(image: tf.Tensor, crop: tuple[int, int], pair: tf.Tensor) -> tf.Tensor:
    """A random `crop` patch, randomly mirrored (book ch. 10 patches + horizontal flips)."""
    patch = tf.image.stateless_random_crop(image, (*crop, image.shape[-1]), seed=pair)
    patch = tf.image.stateless_random_flip_left_right(patch, seed=pair[::-1])
    return tf.cast(patch, tf.float32)


class _SeedStream(keras.random.SeedGenerator):
    """Seeds for Keras' random layers drawn from one seed tensor instead of a stateful
    variable: draw n of a traced function is fold_in(seed, n), so a batch's augmentation
    depends only on its seed. (No `super().__init__()`: it would make the state variable.)"""

    def __init__(self, seed: tf.Tensor) -> None:
        self.seed, self.draws = seed, 0

    def next(self, ordered: bool = True) -> tf.Tensor:
        self.draws += 1
        return tf.random.experimental.stateless_fold_in(self.seed, self.draws)


def _augment(augmentation: keras.Sequential, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """`augmentation`'s layers applied in order, their randomness drawn from `seed`."""
    seeds = _SeedStream(seed)
    for layer in augmentation.layers:
        transformation = layer.get_random_transformation(images, training=True, seed=seeds)
        images = layer.transform_images(images, transformation, training=True)
    return images


def evaluation_dataset(
    info: PackInfo, *, batch_size: int, crop: tuple[int, int] | None = None
) -> tf.data.Dataset:
    """Batches in stored order, centre-cropped to `crop`: (float32 images, int64 labels)."""
    rows = _read_chunks(info).unbatch()
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
