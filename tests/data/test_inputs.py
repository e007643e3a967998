"""tf.data pipelines from packs: shapes, label alignment, every row once per epoch, seeded
shuffles that change per epoch, crops where they claim to be."""

from pathlib import Path

import numpy as np
import pytest

from imgclf.data.inputs import (
    PackInfo,
    build_augmentation,
    centre_crop,
    evaluation_dataset,
    training_dataset,
)
from support.packs import write_pack

COUNT, SIZE, CHUNK = 37, (12, 10), 5


def write_coded_pack(path: Path) -> PackInfo:
    """Row i is a flat image with R = i, G = 100 + label, B = 7; label = i % 3."""
    images = np.zeros((COUNT, *SIZE, 3), np.uint8)
    labels = np.arange(COUNT) % 3
    images[..., 0] = np.arange(COUNT)[:, None, None]
    images[..., 1] = (100 + labels)[:, None, None]
    images[..., 2] = 7
    return PackInfo.read(write_pack(path, images, labels, ["a", "b", "c"], CHUNK))


@pytest.fixture
def coded(tmp_path: Path) -> PackInfo:
    return write_coded_pack(tmp_path / "coded.h5")


def epochs(dataset, count: int, batch_size: int, passes: int) -> list[tuple[np.ndarray, ...]]:
    """Rows (R value, label, G value) of `passes` epochs of an endless training dataset."""
    steps = -(-count // batch_size)
    rows = []
    for images, labels in dataset.take(steps * passes):
        assert images.dtype.name == "float32" and labels.dtype.name == "int64"
        rows += zip(
            images[:, 0, 0, 0].numpy(), labels.numpy(), images[:, 0, 0, 1].numpy(), strict=True
        )
    return rows


@pytest.mark.parametrize("cache", [False, True])
def test_training_rows_stay_aligned_and_each_appears_once_per_pass(
    coded: PackInfo, cache: bool
) -> None:
    dataset = training_dataset(coded, batch_size=COUNT, seed=3, crop=(8, 8), cache=cache)
    images, _ = next(iter(dataset))
    assert images.shape == (COUNT, 8, 8, 3)
    first, second = (
        epochs(dataset.take(2), COUNT, COUNT, 2)[i * COUNT : (i + 1) * COUNT] for i in range(2)
    )
    for rows in (first, second):
        assert sorted(int(row) for row, _, _ in rows) == list(range(COUNT))
        assert all(label == row % 3 and green == 100 + label for row, label, green in rows)
    assert [row for row, _, _ in first] != [row for row, _, _ in second]  # reshuffled


def test_same_seed_same_order_other_seed_other_order(coded: PackInfo) -> None:
    def order(seed: int) -> list[float]:
        dataset = training_dataset(coded, batch_size=8, seed=seed, crop=(8, 8))
        return [row for row, _, _ in epochs(dataset, COUNT, 8, 2)]

    assert order(5) == order(5)
    assert order(5) != order(6)


def test_augmentation_keeps_labels_with_their_images(coded: PackInfo) -> None:
    augmentation = build_augmentation(rotation=30, shift=0.1, shear=10, zoom=0.2, seed=1)
    dataset = training_dataset(
        coded, batch_size=6, seed=0, crop=(10, 10), augmentation=augmentation
    )
    for images, labels in dataset.take(20):
        green = images[..., 1].numpy()
        # Flat images stay flat under rotation/shift/shear/zoom with nearest fill.
        expected = np.broadcast_to((100 + labels.numpy())[:, None, None], green.shape)
        np.testing.assert_allclose(green, expected, atol=1e-3)


def test_evaluation_is_in_order_centre_cropped_and_finite(coded: PackInfo) -> None:
    dataset = evaluation_dataset(coded, batch_size=8, crop=(8, 8))
    assert dataset.cardinality().numpy() == 5
    rows = [(images.numpy(), labels.numpy()) for images, labels in dataset]
    assert [len(labels) for _, labels in rows] == [8, 8, 8, 8, 5]
    values = np.concatenate([images[:, 0, 0, 0] for images, _ in rows])
    np.testing.assert_array_equal(values, np.arange(COUNT))


def test_centre_crop_position() -> None:
    image = np.arange(6 * 7 * 3, dtype=np.float32).reshape(6, 7, 3)
    np.testing.assert_array_equal(centre_crop(image, (2, 3)), image[2:4, 2:5])


def test_random_patches_are_windows_of_the_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)
    info = PackInfo.read(write_pack(tmp_path / "one.h5", image, [0], ["a"], 1))
    offsets, flips = set(), set()
    for patch, _ in training_dataset(info, batch_size=1, seed=0, crop=(6, 5)).take(40):
        patch = patch.numpy()[0].astype(np.uint8)
        for flipped in (False, True):
            source = image[0, :, ::-1] if flipped else image[0]
            for top in range(SIZE[0] - 6 + 1):
                for left in range(SIZE[1] - 5 + 1):
                    if np.array_equal(source[top : top + 6, left : left + 5], patch):
                        offsets.add((top, left))
                        flips.add(flipped)
    assert len(offsets) > 5 and flips == {False, True}


def batches_of(dataset, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(images.numpy(), labels.numpy()) for images, labels in dataset.take(count)]


@pytest.mark.parametrize("cache", [False, True])
def test_a_stream_resumed_at_an_epoch_repeats_that_epoch_exactly(
    coded: PackInfo, cache: bool
) -> None:
    """Order, patches, flips and augmentation of epoch k come from (seed, k) alone."""
    augmentation = build_augmentation(rotation=30, shift=0.1, shear=10, zoom=0.2, seed=1)
    options = {"batch_size": 8, "seed": 4, "crop": (8, 8), "cache": cache}
    steps = -(-COUNT // 8)  # one pass; the last batch is partial
    whole = batches_of(training_dataset(coded, augmentation=augmentation, **options), 3 * steps)
    assert [len(labels) for _, labels in whole[:steps]] == [8, 8, 8, 8, 5]
    resumed = training_dataset(coded, augmentation=augmentation, first_epoch=2, **options)
    for (images, labels), (again, labels_again) in zip(
        whole[2 * steps :], batches_of(resumed, steps), strict=True
    ):
        np.testing.assert_array_equal(labels, labels_again)
        np.testing.assert_array_equal(images, again)
    assert not np.array_equal(whole[0][0], whole[steps][0])  # epochs differ


def test_cache_reads_the_pack_once(coded: PackInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgclf.data import inputs

    reads = []
    original = inputs._Rows.chunks
    monkeypatch.setattr(
        inputs._Rows,
        "chunks",
        lambda self, indices: reads.append(len(indices)) or original(self, indices),
    )
    dataset = training_dataset(coded, batch_size=8, seed=0, crop=(8, 8), cache=True)
    batches_of(dataset, 3 * 5)
    assert reads == [coded.chunks]  # every chunk, once


def test_the_largest_shear_params_allow_is_one_keras_accepts() -> None:
    """params bound cnn.augment.shear at 45 degrees: RandomShear builds with it (tan 45 = 1)."""
    build_augmentation(rotation=0, shift=0, shear=45, zoom=0, seed=1)
    with pytest.raises(ValueError):
        build_augmentation(rotation=0, shift=0, shear=46, zoom=0, seed=1)
