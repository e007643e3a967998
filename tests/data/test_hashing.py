"""Pixel and perceptual hashes: the same picture hashes the same whatever its file, planted
near-duplicates stay within a few bits, and the near-pair search misses no pair."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from imgclf.data.hashing import (
    count_groups,
    duplicate_groups,
    hamming,
    hash_values,
    near_pairs,
    perceptual_hash,
    pixel_hash,
)
from imgclf.data.imaging import image_facts
from support.images import photo


def smooth_photo(seed: int, width: int = 96, height: int = 72) -> np.ndarray:
    """A BGR image of smooth shapes with a little noise, like a downscaled photo."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.add(image, photo(width, height, (0, 0, 0), seed) // 8)


def test_pixel_hash_ignores_format_and_name(tmp_path: Path) -> None:
    image = smooth_photo(0)
    for name in ("a.png", "b.bmp", "c.tiff", "d.webp"):
        params = [cv2.IMWRITE_WEBP_QUALITY, 101] if name.endswith("webp") else []
        cv2.imwrite(str(tmp_path / name), image, params)
    cv2.imwrite(str(tmp_path / "e.jpg"), image)  # lossy: other pixels
    facts = image_facts([str(path) for path in sorted(tmp_path.iterdir())])
    pixel = [fact[3] for fact in facts]
    assert len(set(pixel[:4])) == 1 and pixel[4] != pixel[0]
    assert len({fact[2] for fact in facts}) == 5  # the files' MD5s all differ
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert pixel_hash(grey) == pixel_hash(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    assert pixel_hash(grey) != pixel_hash(grey.T.copy())  # same bytes count, other shape


@pytest.mark.parametrize(
    "change",
    [
        lambda image: cv2.imdecode(
            cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], 1
        ),
        lambda image: cv2.resize(image, (48, 36), interpolation=cv2.INTER_AREA),
        lambda image: cv2.add(image, np.full_like(image, 10)),
    ],
    ids=["jpeg30", "half-size", "brighter"],
)
def test_perceptual_hash_survives_small_changes(change) -> None:
    distances = [
        hamming(*hash_values([perceptual_hash(image), perceptual_hash(change(image))]))
        for image in map(smooth_photo, range(20))
    ]
    others = hamming(
        hash_values([perceptual_hash(smooth_photo(seed)) for seed in range(20)]),
        hash_values([perceptual_hash(smooth_photo(seed)) for seed in range(20, 40)]),
    )
    assert max(distances) <= 6 and np.median(distances) <= 2
    assert others.min() > 8


def test_near_pairs_equal_brute_force() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2**63, 400, dtype=np.uint64)
    for start in range(0, 60, 3):  # planted pairs at 0-7 bits, random or evenly spread
        bits = start % 8
        spread = np.linspace(start % 5, 63, bits).astype(int)
        flips = spread if start % 2 else rng.choice(64, size=bits, replace=False)
        values[start + 1] = values[start] ^ np.uint64(sum(1 << int(bit) for bit in flips))
    values[200:205] = values[0]  # a run of exact repeats
    for distance in (0, 3, 6):
        first, second = np.triu_indices(len(values), k=1)
        all_distances = hamming(values[first], values[second])
        close = all_distances <= distance
        expected = np.column_stack([first[close], second[close], all_distances[close]])
        np.testing.assert_array_equal(near_pairs(values, distance), expected)


def test_groups_join_exact_and_chained_near_duplicates() -> None:
    pixel = pd.Series(["a", "b", "c", "a", "d", "e"])
    phash = pd.Series(
        [
            "0000000000000000",
            "00000000000000ff",
            "0000000000000003",
            "ffffffffffffffff",
            "0f0f0f0f0f0f0f0f",
            "000000000000000f",
        ]
    )
    # 0-3 same pixels; 0~2 (2 bits), 2~5 (2 bits); 1 is 8 bits from 0 and 4 from 5.
    np.testing.assert_array_equal(duplicate_groups(pixel, phash, 2), [0, 1, 0, 0, 4, 0])
    np.testing.assert_array_equal(duplicate_groups(pixel, phash, 4), [0, 0, 0, 0, 4, 0])
    np.testing.assert_array_equal(duplicate_groups(pixel, phash, None), [0, 1, 2, 0, 4, 5])
    assert count_groups(np.array([0, 1, 0, 0, 4, 0])) == 1
